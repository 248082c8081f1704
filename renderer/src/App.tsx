import { useEffect, useState } from 'react';
import { transportName } from './api.js';
import { WorkOfflineSwitch } from './components/WorkOffline.js';
import { useRoute } from './router.js';
import { OrdersScreen } from './screens/OrdersScreen.js';
import { SettingsScreen } from './screens/SettingsScreen.js';
import { SyncScreen } from './screens/SyncScreen.js';
import { useLive } from './status.js';

type Theme = 'system' | 'light' | 'dark';
const THEME_KEY = 'orderlog.theme';
const NEXT_THEME: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' };

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(THEME_KEY) as Theme | null) ?? 'system');
  useEffect(() => {
    const root = document.documentElement;
    if (theme === 'system') delete root.dataset.theme;
    else root.dataset.theme = theme;
    localStorage.setItem(THEME_KEY, theme);
  }, [theme]);
  return [theme, () => setTheme((t) => NEXT_THEME[t])];
}

const SYNC_SHORT: Record<string, string> = {
  idle: 'Synced',
  syncing: 'Syncing',
  offline: 'Offline',
  error: 'Sync error',
  unauthorized: 'Not authorised',
  disabled: 'Local only',
  paused: 'Working offline',
};

function SyncIndicator() {
  const { sync } = useLive();
  if (!sync) return null;
  // "Synced" in green only when nothing waits for a person: open conflicts, and changes this app
  // cannot read (kept aside until it is updated), are not "synced".
  const waiting = [
    sync.conflictCount > 0 ? `${sync.conflictCount.toLocaleString()} conflict${sync.conflictCount === 1 ? '' : 's'} to review` : null,
    sync.quarantinedCount > 0 ? `${sync.quarantinedCount.toLocaleString()} change${sync.quarantinedCount === 1 ? '' : 's'} kept aside` : null,
  ].filter((x): x is string => x !== null);
  const conflicts = waiting.length > 0 && sync.state === 'idle';
  const label = conflicts ? waiting.join(' · ') : SYNC_SHORT[sync.state];
  return (
    <a href="#/sync" className={`sync-indicator state-${conflicts ? 'conflicts' : sync.state}`} data-testid="sync-indicator" data-state={sync.state}>
      <span className="dot" aria-hidden="true" />
      <span className="sync-label">{label}</span>
      {sync.pendingCount > 0 ? <span className="muted">{sync.pendingCount.toLocaleString()} pending</span> : null}
    </a>
  );
}

export function App() {
  const route = useRoute();
  const { sync } = useLive();
  const [theme, cycleTheme] = useTheme();
  const nav = [
    { href: '#/orders', label: 'Orders', active: route.screen === 'orders', count: 0 },
    { href: '#/sync', label: 'Sync & conflicts', active: route.screen === 'sync', count: (sync?.conflictCount ?? 0) + (sync?.quarantinedCount ?? 0) },
    { href: '#/settings', label: 'Settings', active: route.screen === 'settings', count: 0 },
  ];
  return (
    <div className="app">
      {/* A button, not an #anchor: the hash is the router's. */}
      <button type="button" className="skip-link" onClick={() => document.getElementById('content')?.focus()}>
        Skip to content
      </button>
      <aside className="sidebar">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            ◆
          </span>
          Orderlog
        </div>
        <nav aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.href}>
                <a href={n.href} className={n.active ? 'nav-link active' : 'nav-link'} aria-current={n.active ? 'page' : undefined}>
                  {n.label}
                  {n.count > 0 ? (
                    <span className="nav-count" aria-label={`${n.count} conflicts`}>
                      {n.count}
                    </span>
                  ) : null}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div className="sidebar-foot">
          <SyncIndicator />
          <WorkOfflineSwitch />
          <button type="button" className="ghost theme-toggle" onClick={cycleTheme} aria-label={`Theme: ${theme}. Change theme`}>
            Theme: {theme === 'system' ? 'System' : theme === 'light' ? 'Light' : 'Dark'}
          </button>
          <p className="muted small">Connected via {transportName === 'ipc' ? 'desktop app' : 'browser mode'}</p>
        </div>
      </aside>
      <main id="content" className="content" tabIndex={-1}>
        {route.screen === 'orders' ? <OrdersScreen selectedId={route.orderId} /> : null}
        {route.screen === 'sync' ? <SyncScreen /> : null}
        {route.screen === 'settings' ? <SettingsScreen /> : null}
      </main>
    </div>
  );
}
