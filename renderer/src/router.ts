import { useEffect, useState } from 'react';

export type Route = { screen: 'orders'; orderId: string | null } | { screen: 'sync' } | { screen: 'settings' };

/** Hash routes keep deep links working under file:// (Electron) and in browser mode alike. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/orders';
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'sync') return { screen: 'sync' };
  if (parts[0] === 'settings') return { screen: 'settings' };
  return { screen: 'orders', orderId: parts[1] ? decodeURIComponent(parts[1]) : null };
}

export function navigate(path: string): void {
  window.location.hash = path;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
