import { useEffect, useRef, useState } from 'react';
import { ApiError } from './api';
import { getRealtime } from './client';
import type { ConnectionState, LiveEvent, SubscribeOptions } from './websocket';

/** Calls `handler` for each live event matching `opts` while the component is mounted. */
export function useLiveEvents(opts: SubscribeOptions | null, handler: (e: LiveEvent) => void) {
  const ref = useRef(handler);
  ref.current = handler;
  const key = opts ? JSON.stringify(opts) : '';
  useEffect(() => {
    if (!opts) return;
    return getRealtime().subscribe(opts, (e) => ref.current(e));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
}

/** Runs `handler` when the server says events were lost (views reload then). */
export function useResync(handler: () => void) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => getRealtime().onResync(() => ref.current()), []);
}

export function useConnectionState(): ConnectionState {
  const [s, setS] = useState<ConnectionState>('idle');
  useEffect(() => getRealtime().onState(setS), []);
  return s;
}

export interface AsyncState<T> {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
  setData: React.Dispatch<React.SetStateAction<T | undefined>>;
}

/** Loads once (and on reload()), keeping loading / error / data for the three view states. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[] = []): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        setError(e instanceof ApiError ? e : new ApiError(0, 'client_error', String((e as Error)?.message ?? e)));
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick, ...deps]);
  return { data, error, loading, reload: () => setTick((t) => t + 1), setData };
}
