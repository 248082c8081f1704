import { decide, type OrderCommand, type Rejection } from '../domain/commands.js';
import type { OrderEvent } from '../domain/events.js';
import { foldOrder, type OrderState } from '../domain/state.js';

export interface RebaseInput {
  commandId: string;
  command: OrderCommand;
}

export type RebaseOutcome =
  | { commandId: string; ok: true; events: OrderEvent[] }
  | { commandId: string; ok: false; rejection: Rejection };

/**
 * Re-run pending commands, in their creation order, on a newer confirmed state: each accepted
 * command's events become part of the state the next one is decided on; a rejected one adds
 * nothing. Pure: the caller persists the outcome.
 */
export function rebaseCommands(confirmed: OrderState, commands: readonly RebaseInput[]): { outcomes: RebaseOutcome[]; state: OrderState } {
  let state = confirmed;
  const outcomes: RebaseOutcome[] = [];
  for (const c of commands) {
    const decision = decide(state, c.command);
    if (decision.ok) {
      state = foldOrder(decision.events.map((e) => ({ type: e.type, data: e.data })), state);
      outcomes.push({ commandId: c.commandId, ok: true, events: decision.events });
    } else {
      outcomes.push({ commandId: c.commandId, ok: false, rejection: decision.rejection });
    }
  }
  return { outcomes, state };
}
