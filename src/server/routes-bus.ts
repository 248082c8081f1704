import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeadLetter, type DeadLetters } from './bus/dead-letters.js';
import { caller } from './http-context.js';
import { commonErrors } from './http-schemas.js';

const DeadLetterList = z.object({ deadLetters: z.array(DeadLetter) });
const ReplayBody = z.strictObject({ seq: z.number().int().positive().optional() }).optional();
const ReplayResult = z.object({ replayed: z.array(DeadLetter) });

/** Admin routes over the broker's dead letters; an admin token sees and replays its own tenant's. */
export function registerBusRoutes(app: FastifyInstance, deadLetters: DeadLetters): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/admin/dead-letters',
    { config: { role: 'admin' }, schema: { tags: ['admin'], response: { 200: DeadLetterList, ...commonErrors() } } },
    async (req) => ({ deadLetters: await deadLetters.list(caller(req).tenant) }),
  );
  r.post(
    '/api/admin/dead-letters/replay',
    { config: { role: 'admin' }, schema: { tags: ['admin'], body: ReplayBody, response: { 200: ReplayResult, ...commonErrors({ body: true }) } } },
    async (req) => {
      const replayed = await deadLetters.replay({ tenantId: caller(req).tenant, seq: req.body?.seq });
      req.log.info({ count: replayed.length }, 'dead letters replayed');
      return { replayed };
    },
  );
}
