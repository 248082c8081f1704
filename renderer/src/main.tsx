import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { openBrowserSession } from './session.js';
import { LiveProvider } from './status.js';
import './styles.css';

const root = createRoot(document.getElementById('root')!);

function NotConnected({ message }: { message: string }) {
  return (
    <main className="page not-connected">
      <h1>Orderlog</h1>
      <div className="notice notice-error" role="alert">
        {message}
      </div>
    </main>
  );
}

// Browser mode signs in before anything calls the store; under Electron the preload bridge is the channel.
const session = window.orderlog ? { ok: true as const } : await openBrowserSession();
root.render(
  <StrictMode>
    {session.ok ? (
      <LiveProvider>
        <App />
      </LiveProvider>
    ) : (
      <NotConnected message={session.message} />
    )}
  </StrictMode>,
);
