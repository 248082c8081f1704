import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A running Stoplight Prism validating proxy in front of one server. */
export interface PrismProxy {
  url: string;
  /** Everything Prism logged (its violation reports included). */
  log(): string;
  close(): Promise<void>;
}

const PRISM_BIN = join(process.cwd(), 'node_modules', '.bin', 'prism');

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * `prism proxy <spec> <upstream> --errors`: forwards every request and checks the request and
 * the answer against the OpenAPI document; a violation turns the answer into Prism's own error
 * (and an `sl-violations` header). `validateRequest: false` forwards requests that break the
 * contract on purpose (to check the server's error answers), still validating the answers.
 */
export async function startPrism(specFile: string, upstream: string, opts: { validateRequest: boolean }): Promise<PrismProxy> {
  const port = await freePort();
  const args = ['proxy', specFile, upstream, '--errors', '--host', '127.0.0.1', '--port', String(port), `--validate-request=${String(opts.validateRequest)}`];
  const child: ChildProcess = spawn(PRISM_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Prism is listening/.test(output)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`prism exited with ${String(code)} before listening:\n${output}`)));
  });
  await ready;
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => output,
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
