import * as React from 'react';
import { Activity, Bot, ChevronDown, GitBranch, LogOut, Menu, Shield, X } from 'lucide-react';
import { ApiError, type AuthMode, type Role, type User } from '../../lib/api';
import { api, getRealtime, redirectToLogin } from '../../lib/client';
import { useConnectionState } from '../../lib/hooks';
import { cn } from '../../lib/utils';
import { Badge } from '../ui/badge';
import { Button } from '../ui/button';
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuLabel,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from '../ui/dropdown-menu';
import { Toaster } from '../ui/toast';
import { ErrorState, LoadingState } from './states';

export interface SessionInfo {
  mode: AuthMode;
  /** in open mode (a server without identity) a stand-in with every right */
  user: User;
  role: Role;
}

const SessionContext = React.createContext<SessionInfo | null>(null);

export function useSession(): SessionInfo {
  const s = React.useContext(SessionContext);
  if (!s) throw new Error('useSession outside AppShell');
  return s;
}

const NAV = [
  { href: '/dashboard', key: 'dashboard', label: 'Dashboard', icon: Activity },
  { href: '/agents', key: 'agents', label: 'Agents', icon: Bot },
  { href: '/workflows', key: 'workflows', label: 'Workflows', icon: GitBranch },
  { href: '/admin', key: 'admin', label: 'Admin', icon: Shield, adminOnly: true },
] as const;

function ConnectionDot() {
  const s = useConnectionState();
  if (s === 'idle') return null; // this page shows nothing live
  const label = s === 'open' ? 'Live' : s === 'connecting' || s === 'reconnecting' ? 'Reconnecting' : 'Offline';
  return (
    <span className="inline-flex items-center gap-1.5 text-xs text-muted-foreground" data-connection={s} title={`Live events: ${s}`}>
      <span className={cn('size-2 rounded-full', s === 'open' ? 'bg-green-600' : s === 'closed' ? 'bg-slate-400' : 'bg-amber-500')} />
      <span className="hidden sm:inline">{label}</span>
    </span>
  );
}

/** Checks the session, then renders the page inside the navigation frame. */
export function AppShell({ page, title, children }: { page: string; title: string; children: React.ReactNode }) {
  const [session, setSession] = React.useState<SessionInfo | null>(null);
  const [error, setError] = React.useState<ApiError | null>(null);
  const [menuOpen, setMenuOpen] = React.useState(false);

  const check = React.useCallback(() => {
    setError(null);
    api.me().then(
      ({ mode, user }) => {
        if (mode === 'open') {
          setSession({ mode, role: 'admin', user: { id: '', username: 'local', displayName: 'Local (no sign-in)', role: 'admin' } });
        } else if (user) {
          setSession({ mode, role: user.role, user });
        }
      },
      (e: ApiError) => {
        if (e.status === 401) redirectToLogin();
        else setError(e);
      },
    );
  }, []);

  React.useEffect(check, [check]);

  const logout = async () => {
    getRealtime().close();
    await api.logout();
    window.location.assign('/login');
  };

  if (!session) {
    return (
      <div className="mx-auto max-w-6xl p-6">
        {error ? <ErrorState error={error} onRetry={check} title="Cannot reach devplane" /> : <LoadingState label="Checking your session" />}
      </div>
    );
  }

  const nav = NAV.filter((n) => !('adminOnly' in n && n.adminOnly) || session.role === 'admin');
  return (
    <SessionContext.Provider value={session}>
      <Toaster>
        <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-background focus:p-2">
          Skip to content
        </a>
        <header className="sticky top-0 z-40 border-b border-border bg-background/95 backdrop-blur">
          <div className="mx-auto flex h-14 max-w-7xl items-center gap-2 px-3 sm:gap-4 sm:px-4">
            <a href="/dashboard" className="font-semibold tracking-tight">
              devplane
            </a>
            <nav aria-label="Main" className="hidden items-center gap-1 md:flex">
              {nav.map((n) => (
                <a
                  key={n.key}
                  href={n.href}
                  aria-current={page === n.key ? 'page' : undefined}
                  className={cn(
                    'inline-flex items-center gap-1.5 rounded-md px-3 py-1.5 text-sm hover:bg-muted',
                    page === n.key ? 'bg-muted font-medium' : 'text-muted-foreground',
                  )}
                >
                  <n.icon className="size-4" aria-hidden="true" />
                  {n.label}
                </a>
              ))}
            </nav>
            <div className="ml-auto flex items-center gap-1 sm:gap-3">
              <ConnectionDot />
              <DropdownMenu>
                <DropdownMenuTrigger asChild>
                  <Button variant="ghost" size="sm" data-testid="user-menu" aria-label={`Account: ${session.user.username}`}>
                    <span className="hidden max-w-32 truncate sm:inline">{session.user.displayName || session.user.username}</span>
                    <Badge variant="secondary">{session.role}</Badge>
                    <ChevronDown aria-hidden="true" />
                  </Button>
                </DropdownMenuTrigger>
                <DropdownMenuContent align="end">
                  <DropdownMenuLabel>
                    {session.user.username}
                    <div className="text-xs font-normal text-muted-foreground">role: {session.role}</div>
                  </DropdownMenuLabel>
                  {session.mode === 'required' ? (
                    <>
                      <DropdownMenuSeparator />
                      <DropdownMenuItem onSelect={() => void logout()} data-testid="logout">
                        <LogOut className="size-4" aria-hidden="true" /> Sign out
                      </DropdownMenuItem>
                    </>
                  ) : null}
                </DropdownMenuContent>
              </DropdownMenu>
              <Button variant="ghost" size="icon" className="md:hidden" aria-label="Menu" aria-expanded={menuOpen} onClick={() => setMenuOpen((o) => !o)}>
                {menuOpen ? <X /> : <Menu />}
              </Button>
            </div>
          </div>
          {menuOpen ? (
            <nav aria-label="Main (narrow)" className="border-t border-border px-4 py-2 md:hidden">
              {nav.map((n) => (
                <a key={n.key} href={n.href} aria-current={page === n.key ? 'page' : undefined} className="flex items-center gap-2 rounded-md px-2 py-2 text-sm hover:bg-muted">
                  <n.icon className="size-4" aria-hidden="true" /> {n.label}
                </a>
              ))}
            </nav>
          ) : null}
        </header>
        <main id="main" className="mx-auto max-w-7xl px-4 py-6">
          <h1 className="mb-4 text-2xl font-semibold tracking-tight">{title}</h1>
          {session.mode === 'open' ? (
            <p className="mb-4 text-xs text-muted-foreground">This server has no sign-in yet: everyone who can reach it has every right.</p>
          ) : null}
          {children}
        </main>
      </Toaster>
    </SessionContext.Provider>
  );
}
