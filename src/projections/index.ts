import { customerHistoryProjection } from './customer-history.js';
import { orderListProjection } from './order-list.js';
import type { Projection } from './types.js';

export * from './types.js';
export * from './lru.js';
export * from './order-list.js';
export * from './customer-history.js';
export * from './registry.js';
export * from './runner.js';
export * from './rebuild.js';
export * from './drift.js';
export * from './queries.js';
export * from './query-schemas.js';

/** The projections the app ships: order list (+ daily totals) and customer history. */
export function defaultProjections(): Projection[] {
  return [orderListProjection(), customerHistoryProjection()];
}
