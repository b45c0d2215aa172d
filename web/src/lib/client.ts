// The browser's single ApiClient and RealtimeClient, shared by every island on a page.
import { ApiClient, type KeyValueStorage } from './api';
import { RealtimeClient } from './websocket';

function browserStorage(): KeyValueStorage | undefined {
  try {
    return typeof window !== 'undefined' ? window.localStorage : undefined;
  } catch {
    return undefined;
  }
}

function loginUrl(): string {
  const here = window.location.pathname + window.location.search;
  return `/login?next=${encodeURIComponent(here)}`;
}

export const api = new ApiClient({
  storage: browserStorage(),
  onSessionExpired: () => {
    if (typeof window !== 'undefined' && !window.location.pathname.startsWith('/login')) {
      window.location.assign(loginUrl());
    }
  },
});

let realtime: RealtimeClient | null = null;

export function getRealtime(): RealtimeClient {
  realtime ??= new RealtimeClient({ beforeConnect: () => api.ensureFreshToken() });
  return realtime;
}

export function redirectToLogin() {
  window.location.assign(loginUrl());
}
