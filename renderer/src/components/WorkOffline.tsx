import { useState } from 'react';
import { api } from '../api.js';
import { useLive } from '../status.js';

/** "Work offline": the person's switch (planes, metered links); kept on this device across restarts. */
export function WorkOfflineSwitch() {
  const { sync, setSync } = useLive();
  const [busy, setBusy] = useState(false);
  if (!sync || !sync.serverUrl) return null;
  return (
    <label className="switch" data-testid="work-offline">
      <input
        type="checkbox"
        role="switch"
        checked={sync.paused}
        disabled={busy}
        onChange={(e) => {
          setBusy(true);
          api
            .setWorkOffline({ workOffline: e.target.checked })
            .then(setSync)
            .catch(() => undefined)
            .finally(() => setBusy(false));
        }}
      />
      <span>Work offline</span>
    </label>
  );
}
