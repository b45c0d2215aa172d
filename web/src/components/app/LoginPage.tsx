import * as React from 'react';
import { KeyRound, LogIn } from 'lucide-react';
import { ApiError, type OidcConfig } from '../../lib/api';
import { api } from '../../lib/client';
import { Alert, AlertDescription } from '../ui/alert';
import { Button } from '../ui/button';
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from '../ui/card';
import { Input } from '../ui/input';
import { Field } from '../ui/label';

/** Where to go after signing in: a local path from ?next=, else the dashboard. */
function nextPath(): string {
  const n = new URLSearchParams(window.location.search).get('next');
  return n && n.startsWith('/') && !n.startsWith('//') && !n.startsWith('/login') ? n : '/dashboard';
}

export default function LoginPage() {
  const [username, setUsername] = React.useState('');
  const [password, setPassword] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [oidc, setOidc] = React.useState<OidcConfig>({ enabled: false });
  const [open, setOpen] = React.useState(false);

  React.useEffect(() => {
    const params = new URLSearchParams(window.location.search);
    if (params.get('error')) setError(params.get('error_description') ?? params.get('error'));
    void api.oidcConfig().then(setOidc);
    // Already signed in, or a server without sign-in: nothing to do here.
    api.me().then(
      ({ mode, user }) => {
        if (mode === 'open') setOpen(true);
        else if (user) window.location.replace(nextPath());
      },
      () => {},
    );
  }, []);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    if (!username || !password) {
      setError('Enter your username and password.');
      return;
    }
    setBusy(true);
    try {
      await api.login(username, password);
      window.location.assign(nextPath());
    } catch (err) {
      const ae = err as ApiError;
      setError(
        ae.status === 401
          ? 'Wrong username or password.'
          : ae.status === 429
            ? 'Too many attempts. Wait a moment and try again.'
            : ae.status === 404
              ? 'This server has no sign-in yet.'
              : `${ae.message}`,
      );
      setBusy(false);
    }
  };

  return (
    <div className="flex min-h-screen items-center justify-center bg-muted p-4">
      <Card className="w-full max-w-sm">
        <CardHeader>
          <CardTitle className="text-xl">Sign in to devplane</CardTitle>
          <CardDescription>The control plane for your agents.</CardDescription>
        </CardHeader>
        <CardContent>
          {open ? (
            <Alert variant="info" className="mb-4">
              <AlertDescription>
                This server has no sign-in yet. <a className="underline" href="/dashboard">Open the dashboard</a>.
              </AlertDescription>
            </Alert>
          ) : null}
          <form className="grid gap-4" onSubmit={submit} noValidate aria-describedby={error ? 'login-error' : undefined}>
            <Field id="username" label="Username">
              {(p) => <Input {...p} name="username" autoComplete="username" autoFocus value={username} onChange={(e) => setUsername(e.target.value)} />}
            </Field>
            <Field id="password" label="Password">
              {(p) => (
                <Input {...p} name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
              )}
            </Field>
            {error ? (
              <Alert variant="destructive" id="login-error">
                <AlertDescription>{error}</AlertDescription>
              </Alert>
            ) : null}
            <Button type="submit" disabled={busy}>
              <LogIn /> {busy ? 'Signing in…' : 'Sign in'}
            </Button>
          </form>
          {oidc.enabled ? (
            <>
              <div className="my-4 flex items-center gap-2 text-xs text-muted-foreground">
                <span className="h-px flex-1 bg-border" /> or <span className="h-px flex-1 bg-border" />
              </div>
              <Button variant="outline" className="w-full" asChild>
                <a href={oidc.loginUrl} data-testid="sso">
                  <KeyRound /> Sign in with {oidc.displayName ?? 'single sign-on'}
                </a>
              </Button>
            </>
          ) : null}
        </CardContent>
      </Card>
    </div>
  );
}
