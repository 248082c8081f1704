import { ORDER_STREAM_TYPE } from '../../domain/events.js';
import { expectedVersionMatches } from '../../protocol/envelope.js';
import {
  MissingEventsBudget,
  appendResult,
  conflictAnswer,
  dataErrorRefusal,
  foldOrderView,
  isInputError,
  judgeDuplicates,
  missingAfter,
  normalizeAppend,
  orderStreamStartError,
  prepareEvents,
  streamTypeMismatch,
} from './append-logic.js';
import { GENESIS_HASH } from '../hash.js';
import type { AppendCommand, AppendOutcome, PushOutcome } from '../repository.js';
import type { IdempotencyConflictError, InvalidEventError } from '../../protocol/errors.js';
import type { Op, WriteSession, WriteWork, Work } from './port.js';
import { publicEvent, toExisting } from './rows.js';

/**
 * One append inside the caller's transaction: find existing → judge duplicates → lock the head
 * → check the expected version → conflict answer (bounded by `budget`) → prepare (versions,
 * hashes) → fold the read model → write. `cmd` is already normalised.
 */
export function* appendOne(s: WriteSession, cmd: AppendCommand, recordedAt: string, budget: MissingEventsBudget): Op<AppendOutcome> {
  // The head is locked before anything is read, so the reads see what its previous holder committed.
  const head = yield* s.lockHead(cmd);
  const current = head?.version ?? 0;
  const isOrder = cmd.streamType === ORDER_STREAM_TYPE;
  const read = yield* s.readForAppend(cmd, isOrder);
  const duplicate = judgeDuplicates(cmd, read.existing.map(toExisting));
  if (duplicate) return { status: 'ok', result: duplicate };

  if (head && current > 0 && head.streamType !== cmd.streamType) throw streamTypeMismatch(cmd, head.streamType);
  if (!expectedVersionMatches(cmd.expectedVersion, current)) {
    const rows = yield* s.streamEvents(cmd.tenantId, cmd.streamId, missingAfter(cmd.expectedVersion, current), budget.rowLimit);
    return { status: 'conflict', conflict: conflictAnswer(cmd, current, rows.map(publicEvent), budget) };
  }
  const startError = orderStreamStartError(cmd, current);
  if (startError) throw startError;
  const prepared = prepareEvents(cmd, current, head?.lastHash ?? GENESIS_HASH, recordedAt);
  // The fold needs no position: the dialect sets the row's last_position from the insert.
  const view = isOrder ? foldOrderView(cmd.streamId, read.state, prepared.map((p) => ({ ...p, globalPosition: 0 }))) : null;
  const positions = yield* s.write(cmd, prepared, view);
  const stored = prepared.map((p, i) => ({ eventId: p.eventId, streamVersion: p.streamVersion, globalPosition: positions[i]! }));
  return { status: 'ok', result: appendResult(cmd.streamId, stored) };
}

/** Only a new write is kept: a conflict or a duplicate leaves nothing behind (a locked head may have created a row). */
const keeps = (o: AppendOutcome): boolean => o.status === 'ok' && !o.result.duplicate;

/** A single append as a transaction's work. Bad input is thrown; nothing is written then. */
export function appendWork(input: AppendCommand): WriteWork<AppendCommand, AppendOutcome> {
  return { prepare: (recordedAt) => normalizeAppend(input, recordedAt), streams: (cmd) => [cmd], run };
  function* run(s: WriteSession, cmd: AppendCommand, recordedAt: string): Op<Work<AppendOutcome>> {
    let outcome: AppendOutcome;
    try {
      outcome = yield* appendOne(s, cmd, recordedAt, new MissingEventsBudget());
    } catch (err) {
      throw dataErrorRefusal(err) ?? err;
    }
    return { value: outcome, commit: keeps(outcome) };
  }
}

/** Stable (tenant, stream) order of a push's elements: one stream's elements keep theirs. */
export function streamOrder(inputs: readonly AppendCommand[]): number[] {
  const order = inputs.map((_, i) => i);
  return order.sort((x, y) => {
    const a = inputs[x]!;
    const b = inputs[y]!;
    return a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : x - y;
  });
}

/**
 * A push as a transaction's work: each element in its own savepoint, so a conflict or bad input
 * (or a value the database refuses) undoes that element alone; any other error is thrown and
 * undoes the whole push. One budget bounds the missing events of all its conflicts.
 */
export function pushWork(inputs: readonly AppendCommand[], order: readonly number[]): WriteWork<Normalised[], PushOutcome[]> {
  return {
    prepare: (recordedAt) => inputs.map((input) => normalised(input, recordedAt)),
    streams: (cmds) => cmds.filter((c): c is AppendCommand => 'streamId' in c),
    run,
  };
  function* run(s: WriteSession, cmds: Normalised[], recordedAt: string): Op<Work<PushOutcome[]>> {
    const out = new Array<PushOutcome>(inputs.length);
    const budget = new MissingEventsBudget();
    let wrote = false;
    for (const i of order) {
      const cmd = cmds[i]!;
      if (!('streamId' in cmd)) {
        out[i] = cmd;
        continue;
      }
      yield* s.savepoint();
      try {
        const outcome = yield* appendOne(s, cmd, recordedAt, budget);
        const keep = keeps(outcome);
        yield* keep ? s.release() : s.rollbackToSavepoint();
        wrote ||= keep;
        out[i] = outcome;
      } catch (err) {
        const refusal = isInputError(err) ? err : dataErrorRefusal(err);
        if (!refusal) throw err;
        yield* s.rollbackToSavepoint();
        out[i] = { status: 'error', error: refusal };
      }
    }
    return { value: out, commit: wrote };
  }
}

/** A push element checked against the recording time: ready to append, or refused. */
type Normalised = AppendCommand | { status: 'error'; error: IdempotencyConflictError | InvalidEventError };

function normalised(input: AppendCommand, recordedAt: string): Normalised {
  try {
    return normalizeAppend(input, recordedAt);
  } catch (err) {
    if (!isInputError(err)) throw err;
    return { status: 'error', error: err };
  }
}
