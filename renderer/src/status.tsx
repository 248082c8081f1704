import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { newerStatus, type RebuildProgress, type StatusEvent, type SyncStatus } from '../../src/app/contract.js';
import { api } from './api.js';

interface LiveState {
  sync: SyncStatus | null;
  /** Bumps on every 'changed' notification so views re-query. */
  changeTick: number;
  changedOrderIds: ReadonlySet<string>;
  rebuild: RebuildProgress | null;
  /** This device's id, to tell its own changes from other devices'. */
  deviceId: string | null;
  /** Replies such as syncNow carry a fresh status: show it without waiting for the stream. */
  setSync(status: SyncStatus): void;
}

const CHANGE_COALESCE_MS = 150;

type Live = Omit<LiveState, 'setSync'>;
const LiveContext = createContext<LiveState>({ sync: null, changeTick: 0, changedOrderIds: new Set(), rebuild: null, deviceId: null, setSync: () => undefined });

/** One subscription to the status stream for the whole app, plus an initial syncStatus read. */
export function LiveProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<Live>({ sync: null, changeTick: 0, changedOrderIds: new Set(), rebuild: null, deviceId: null });
  useEffect(() => {
    let alive = true;
    api
      .syncStatus({})
      .then((sync) => alive && setState((s) => ({ ...s, sync: newerStatus(s.sync, sync) })))
      .catch(() => undefined);
    api
      .getSettings({})
      .then((settings) => alive && setState((s) => ({ ...s, deviceId: settings.deviceId })))
      .catch(() => undefined);
    // 'changed' arrives per append; during a long sync that is thousands a second. Views re-query
    // on changeTick, so notifications are coalesced into at most one tick per CHANGE_COALESCE_MS.
    let pendingIds = new Set<string>();
    let flushTimer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      flushTimer = null;
      const ids = pendingIds;
      pendingIds = new Set();
      setState((s) => ({ ...s, changeTick: s.changeTick + 1, changedOrderIds: ids }));
    };
    const off = api.onStatus((e: StatusEvent) => {
      switch (e.kind) {
        case 'sync':
          setState((s) => ({ ...s, sync: newerStatus(s.sync, e.status) }));
          break;
        case 'changed':
          for (const id of e.orderIds) pendingIds.add(id);
          flushTimer ??= setTimeout(flush, CHANGE_COALESCE_MS);
          break;
        case 'rebuild':
          setState((s) => ({ ...s, rebuild: e.progress }));
          break;
      }
    });
    return () => {
      alive = false;
      if (flushTimer) clearTimeout(flushTimer);
      off();
    };
  }, []);
  // A reply can arrive after a newer status from the stream (a sync that finished meanwhile): the newer one stays.
  const setSync = useCallback((sync: SyncStatus) => setState((s) => ({ ...s, sync: newerStatus(s.sync, sync) })), []);
  const value = useMemo(() => ({ ...state, setSync }), [state, setSync]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export const useLive = () => useContext(LiveContext);
