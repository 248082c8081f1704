import { useState } from 'react';
import { api } from '../api.js';
import { useLive } from '../status.js';

/** "Work offline": the person's switch (planes, metered links); kept on this device across restarts. */
export function WorkOfflineSwitch() {
  const { sync, setSync } = useLive();
  // The switch moves at once; the device's answer (a fresh status) then confirms it.
  const [wanted, setWanted] = useState<boolean | null>(null);
  if (!sync || !sync.serverUrl) return null;
  return (
    <label className="switch" data-testid="work-offline">
      <input
        type="checkbox"
        role="switch"
        checked={wanted ?? sync.paused}
        onChange={(e) => {
          const on = e.target.checked;
          setWanted(on);
          api
            .setWorkOffline({ workOffline: on })
            .then(setSync)
            .catch(() => undefined)
            .finally(() => setWanted(null));
        }}
      />
      <span>Work offline</span>
    </label>
  );
}
