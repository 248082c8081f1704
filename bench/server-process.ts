// The central server in its own process, as in production: a bench that also drives devices
// must not count the server's CPU against them on the same event loop.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/server/cli.ts', import.meta.url));

export interface ServerProcess {
  url: string;
  /** The server process's CPU time so far (user + system, ms; Linux /proc, 10 ms ticks). */
  cpuMs(): number;
  close(): Promise<void>;
}

/** utime + stime of a process from /proc/<pid>/stat, in ms (clock ticks are 10 ms on Linux). */
function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which is in parentheses and may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export async function startServerProcess(opts: { dbFile: string; tokens: unknown[]; env?: Record<string, string> }): Promise<ServerProcess> {
  // BENCH_SERVER_NODE_ARGS: extra node flags for the server process (e.g. --cpu-prof to profile it).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', CLI, 'start'], {
    env: {
      ...process.env,
      ORDERLOG_DB: opts.dbFile,
      ORDERLOG_TOKENS: JSON.stringify(opts.tokens),
      ORDERLOG_PORT: '0',
      ORDERLOG_RATE_LIMIT_MAX: '100000000',
      ORDERLOG_LOG_LEVEL: 'warn',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
  return {
    url,
    cpuMs: () => procCpuMs(child.pid!),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
