import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { RebuildProgress, StatusEvent, SyncStatus } from '../../src/app/contract.js';
import { api } from './api.js';

interface LiveState {
  sync: SyncStatus | null;
  /** Bumps on every 'changed' notification so views re-query. */
  changeTick: number;
  changedOrderIds: ReadonlySet<string>;
  rebuild: RebuildProgress | null;
  /** Replies such as syncNow carry a fresh status: show it without waiting for the stream. */
  setSync(status: SyncStatus): void;
}

type Live = Omit<LiveState, 'setSync'>;
const LiveContext = createContext<LiveState>({ sync: null, changeTick: 0, changedOrderIds: new Set(), rebuild: null, setSync: () => undefined });

/** One subscription to the status stream for the whole app, plus an initial syncStatus read. */
export function LiveProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<Live>({ sync: null, changeTick: 0, changedOrderIds: new Set(), rebuild: null });
  useEffect(() => {
    let alive = true;
    api
      .syncStatus({})
      .then((sync) => alive && setState((s) => ({ ...s, sync })))
      .catch(() => undefined);
    const off = api.onStatus((e: StatusEvent) => {
      setState((s) => {
        switch (e.kind) {
          case 'sync':
            return { ...s, sync: e.status };
          case 'changed':
            return { ...s, changeTick: s.changeTick + 1, changedOrderIds: new Set(e.orderIds) };
          case 'rebuild':
            return { ...s, rebuild: e.progress };
        }
      });
    });
    return () => {
      alive = false;
      off();
    };
  }, []);
  const setSync = useCallback((sync: SyncStatus) => setState((s) => ({ ...s, sync })), []);
  const value = useMemo(() => ({ ...state, setSync }), [state, setSync]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export const useLive = () => useContext(LiveContext);
