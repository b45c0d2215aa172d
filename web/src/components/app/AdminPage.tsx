import * as React from 'react';
import { Copy, KeyRound, Plus, ShieldCheck, ShieldAlert } from 'lucide-react';
import { ApiError, can, type ApiKey, type AuditChain, type AuditEntry, type Role, type User } from '../../lib/api';
import { api } from '../../lib/client';
import { useAsync } from '../../lib/hooks';
import { timeAgo } from '../../lib/utils';
import { Alert, AlertDescription, AlertTitle } from '../ui/alert';
import { Badge } from '../ui/badge';
import { Button } from '../ui/button';
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from '../ui/dialog';
import { Input, NativeSelect } from '../ui/input';
import { Field, Label } from '../ui/label';
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from '../ui/table';
import { Tabs, TabsContent, TabsList, TabsTrigger } from '../ui/tabs';
import { McpAdaptersTab } from './McpAdaptersTab';
import { useToast } from '../ui/toast';
import { AppShell, useSession } from './AppShell';
import { EmptyState, ErrorState, LoadingState } from './states';

/** A 404 from a resource route means this server does not offer it yet. */
function NotOffered({ what }: { what: string }) {
  return <EmptyState title={`This server does not offer ${what} yet`}>It arrives with a newer devplane; nothing to do here.</EmptyState>;
}

function problemsOf(e: unknown): Record<string, string> {
  return e instanceof ApiError ? e.fieldErrors() : {};
}

function UsersTab() {
  const toast = useToast();
  const users = useAsync<User[]>(() => api.users.list().then((r) => r.data));
  const [open, setOpen] = React.useState(false);
  const [form, setForm] = React.useState({ username: '', displayName: '', password: '', role: 'viewer' as Role });
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [formError, setFormError] = React.useState<string | null>(null);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setErrors({});
    setFormError(null);
    try {
      const { data } = await api.users.create(form);
      users.setData((xs) => [...(xs ?? []), data]);
      setOpen(false);
      setForm({ username: '', displayName: '', password: '', role: 'viewer' });
      toast({ title: `User ${data.username} created`, variant: 'success' });
    } catch (err) {
      setErrors(problemsOf(err));
      const ae = err as ApiError;
      if (!ae.problems.length) setFormError(`${ae.message} (${ae.code})`);
    }
  };

  const update = async (u: User, change: Partial<{ role: Role; status: 'active' | 'disabled' }>) => {
    try {
      const { data } = await api.users.update(u.id, change);
      users.setData((xs) => xs?.map((x) => (x.id === u.id ? { ...x, ...data } : x)));
      toast({ title: `${u.username} updated`, variant: 'success' });
    } catch (err) {
      toast({ title: `Could not update ${u.username}`, description: (err as ApiError).message, variant: 'destructive' });
    }
  };

  if (users.loading && !users.data) return <LoadingState label="Loading users" />;
  if (users.error?.status === 404) return <NotOffered what="user management" />;
  if (users.error) return <ErrorState error={users.error} onRetry={users.reload} />;
  return (
    <div className="grid gap-3">
      <div className="flex justify-end">
        <Button onClick={() => setOpen(true)}>
          <Plus /> New user
        </Button>
      </div>
      {!users.data?.length ? (
        <EmptyState title="No users" />
      ) : (
        <Table data-testid="users-table">
          <TableHeader>
            <TableRow>
              <TableHead>Username</TableHead>
              <TableHead>Name</TableHead>
              <TableHead>Role</TableHead>
              <TableHead>State</TableHead>
              <TableHead>Last sign-in</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {users.data.map((u) => (
              <TableRow key={u.id}>
                <TableCell className="font-medium">{u.username}</TableCell>
                <TableCell>{u.displayName}</TableCell>
                <TableCell>
                  <NativeSelect aria-label={`Role of ${u.username}`} className="h-8 w-32" value={u.role} onChange={(e) => void update(u, { role: e.target.value as Role })}>
                    <option value="admin">admin</option>
                    <option value="operator">operator</option>
                    <option value="viewer">viewer</option>
                  </NativeSelect>
                </TableCell>
                <TableCell>
                  <Button
                    size="sm"
                    variant="ghost"
                    onClick={() => void update(u, { status: u.status === 'disabled' ? 'active' : 'disabled' })}
                    aria-label={`${u.status === 'disabled' ? 'Enable' : 'Disable'} ${u.username}`}
                  >
                    {u.status === 'disabled' ? <Badge variant="secondary">disabled</Badge> : <Badge variant="success">active</Badge>}
                  </Button>
                </TableCell>
                <TableCell className="text-xs text-muted-foreground">{u.lastLoginAt ? timeAgo(u.lastLoginAt) : 'never'}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      <Dialog open={open} onOpenChange={setOpen}>
        <DialogContent aria-describedby={undefined}>
          <DialogHeader>
            <DialogTitle>New user</DialogTitle>
          </DialogHeader>
          <form className="grid gap-3" onSubmit={create} noValidate>
            {formError ? (
              <Alert variant="destructive">
                <AlertDescription>{formError}</AlertDescription>
              </Alert>
            ) : null}
            <Field id="user-username" label="Username" error={errors.username}>
              {(p) => <Input {...p} value={form.username} onChange={(e) => setForm({ ...form, username: e.target.value })} autoComplete="off" />}
            </Field>
            <Field id="user-display" label="Display name" error={errors.displayName}>
              {(p) => <Input {...p} value={form.displayName} onChange={(e) => setForm({ ...form, displayName: e.target.value })} />}
            </Field>
            <Field id="user-password" label="Initial password" error={errors.password}>
              {(p) => <Input {...p} type="password" autoComplete="new-password" value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} />}
            </Field>
            <Field id="user-role" label="Role" error={errors.role}>
              {(p) => (
                <NativeSelect {...p} value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
                  <option value="viewer">viewer: reads everything</option>
                  <option value="operator">operator: acts on agents and workflows</option>
                  <option value="admin">admin: also users, keys and audit</option>
                </NativeSelect>
              )}
            </Field>
            <DialogFooter>
              <Button variant="outline" onClick={() => setOpen(false)}>
                Cancel
              </Button>
              <Button type="submit">Create user</Button>
            </DialogFooter>
          </form>
        </DialogContent>
      </Dialog>
    </div>
  );
}

function ApiKeysTab() {
  const { role } = useSession();
  const toast = useToast();
  const keys = useAsync<ApiKey[]>(() => api.apiKeys.list().then((r) => r.data));
  const [open, setOpen] = React.useState(false);
  const [name, setName] = React.useState('');
  const [keyRole, setKeyRole] = React.useState<Role>('viewer');
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [formError, setFormError] = React.useState<string | null>(null);
  const [secret, setSecret] = React.useState<{ name: string; key: string } | null>(null);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setErrors({});
    setFormError(null);
    try {
      const { data } = await api.apiKeys.create({ name, role: keyRole });
      const { key, ...rest } = data;
      keys.setData((xs) => [...(xs ?? []), rest as ApiKey]);
      setOpen(false);
      setName('');
      setSecret({ name: data.name, key });
    } catch (err) {
      setErrors(problemsOf(err));
      const ae = err as ApiError;
      if (!ae.problems.length) setFormError(`${ae.message} (${ae.code})`);
    }
  };

  const revoke = async (k: ApiKey) => {
    try {
      await api.apiKeys.revoke(k.id);
      keys.setData((xs) => xs?.map((x) => (x.id === k.id ? { ...x, revokedAt: new Date().toISOString() } : x)));
      toast({ title: `Key ${k.name} revoked`, variant: 'success' });
    } catch (err) {
      toast({ title: 'Could not revoke', description: (err as ApiError).message, variant: 'destructive' });
    }
  };

  if (keys.loading && !keys.data) return <LoadingState label="Loading API keys" />;
  if (keys.error?.status === 404) return <NotOffered what="API keys" />;
  if (keys.error) return <ErrorState error={keys.error} onRetry={keys.reload} />;
  return (
    <div className="grid gap-3">
      <div className="flex justify-end">
        <Button onClick={() => setOpen(true)}>
          <KeyRound /> New API key
        </Button>
      </div>
      {!keys.data?.length ? (
        <EmptyState title="No API keys">Keys let scripts and agents call the API without a password.</EmptyState>
      ) : (
        <Table data-testid="keys-table">
          <TableHeader>
            <TableRow>
              <TableHead>Name</TableHead>
              <TableHead>Prefix</TableHead>
              <TableHead>Role</TableHead>
              <TableHead>Created</TableHead>
              <TableHead>Last used</TableHead>
              <TableHead />
            </TableRow>
          </TableHeader>
          <TableBody>
            {keys.data.map((k) => (
              <TableRow key={k.id}>
                <TableCell className="font-medium">{k.name}</TableCell>
                <TableCell>
                  <code className="text-xs">{k.prefix ?? ''}</code>
                </TableCell>
                <TableCell>{k.role ?? ''}</TableCell>
                <TableCell className="text-xs">{timeAgo(k.createdAt)}</TableCell>
                <TableCell className="text-xs">{k.lastUsedAt ? timeAgo(k.lastUsedAt) : 'never'}</TableCell>
                <TableCell className="text-right">
                  {k.revokedAt ? (
                    <Badge variant="secondary">revoked</Badge>
                  ) : (
                    <Button size="sm" variant="ghost" className="text-destructive" onClick={() => void revoke(k)} aria-label={`Revoke ${k.name}`}>
                      Revoke
                    </Button>
                  )}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      <Dialog open={open} onOpenChange={setOpen}>
        <DialogContent aria-describedby={undefined}>
          <DialogHeader>
            <DialogTitle>New API key</DialogTitle>
          </DialogHeader>
          <form className="grid gap-3" onSubmit={create} noValidate>
            {formError ? (
              <Alert variant="destructive">
                <AlertDescription>{formError}</AlertDescription>
              </Alert>
            ) : null}
            <Field id="key-name" label="Name" error={errors.name} hint="what uses it, e.g. ci-pipeline">
              {(p) => <Input {...p} value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
            <Field id="key-role" label="Role" error={errors.role}>
              {(p) => (
                <NativeSelect {...p} value={keyRole} onChange={(e) => setKeyRole(e.target.value as Role)}>
                  <option value="viewer">viewer</option>
                  <option value="operator">operator</option>
                  <option value="agent">agent</option>
                  {can(role, 'admin') ? <option value="admin">admin</option> : null}
                </NativeSelect>
              )}
            </Field>
            <DialogFooter>
              <Button variant="outline" onClick={() => setOpen(false)}>
                Cancel
              </Button>
              <Button type="submit">Create key</Button>
            </DialogFooter>
          </form>
        </DialogContent>
      </Dialog>
      <Dialog open={secret !== null} onOpenChange={(o) => !o && setSecret(null)}>
        <DialogContent aria-describedby="secret-desc">
          <DialogHeader>
            <DialogTitle>Copy the key for {secret?.name} now</DialogTitle>
            <DialogDescription id="secret-desc">This is the only time it is shown. devplane keeps only a hash of it.</DialogDescription>
          </DialogHeader>
          <div className="flex items-center gap-2">
            <code className="flex-1 break-all rounded bg-muted p-2 text-xs" data-testid="new-api-key">
              {secret?.key}
            </code>
            <Button
              size="icon"
              variant="outline"
              aria-label="Copy the key"
              onClick={() => void navigator.clipboard?.writeText(secret?.key ?? '').then(() => toast({ title: 'Copied' }))}
            >
              <Copy />
            </Button>
          </div>
          <DialogFooter>
            <Button onClick={() => setSecret(null)}>I have stored it</Button>
          </DialogFooter>
        </DialogContent>
      </Dialog>
    </div>
  );
}

function AuditTab() {
  const [filters, setFilters] = React.useState({ actor: '', action: '', outcome: '' });
  const [applied, setApplied] = React.useState(filters);
  const entries = useAsync(
    () =>
      api.audit.list({ limit: 200, actor: applied.actor || undefined, action: applied.action || undefined, outcome: applied.outcome || undefined }),
    [applied],
  );
  const chain = entries.data?.meta.chain as AuditChain | undefined;

  if (entries.error?.status === 404) return <NotOffered what="an audit log" />;
  return (
    <div className="grid gap-3">
      {chain ? (
        <Alert variant={chain.verified ? 'info' : 'destructive'} data-testid="audit-chain">
          <div className="flex items-center gap-2">
            {chain.verified ? <ShieldCheck className="size-4" /> : <ShieldAlert className="size-4" />}
            <AlertTitle className="mb-0">
              {chain.verified
                ? `The audit chain verifies (${chain.checked} entries)`
                : `The audit chain is broken${chain.brokenAt ? ` at entry ${chain.brokenAt}` : ''}${chain.reason ? `: ${chain.reason}` : ''}`}
            </AlertTitle>
          </div>
        </Alert>
      ) : null}
      <form
        className="flex flex-wrap items-end gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filters);
        }}
      >
        <div className="grid gap-1.5">
          <Label htmlFor="audit-actor">Actor</Label>
          <Input id="audit-actor" className="w-44" value={filters.actor} onChange={(e) => setFilters({ ...filters, actor: e.target.value })} />
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor="audit-action">Action</Label>
          <Input id="audit-action" className="w-44" placeholder="e.g. POST /api/v1/agents" value={filters.action} onChange={(e) => setFilters({ ...filters, action: e.target.value })} />
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor="audit-outcome">Outcome</Label>
          <NativeSelect id="audit-outcome" className="w-36" value={filters.outcome} onChange={(e) => setFilters({ ...filters, outcome: e.target.value })}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
            <option value="denied">denied</option>
          </NativeSelect>
        </div>
        <Button type="submit" variant="outline">
          Filter
        </Button>
      </form>
      {entries.loading && !entries.data ? (
        <LoadingState label="Loading the audit log" />
      ) : entries.error ? (
        <ErrorState error={entries.error} onRetry={entries.reload} />
      ) : !entries.data?.data.length ? (
        <EmptyState title="No audit entries match" />
      ) : (
        <Table data-testid="audit-table">
          <TableHeader>
            <TableRow>
              <TableHead>#</TableHead>
              <TableHead>When</TableHead>
              <TableHead>Actor</TableHead>
              <TableHead>Action</TableHead>
              <TableHead>Target</TableHead>
              <TableHead>Outcome</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {entries.data.data.map((a: AuditEntry) => (
              <TableRow key={a.id}>
                <TableCell className="tabular-nums text-xs">{a.seq}</TableCell>
                <TableCell className="text-xs">{new Date(a.at).toLocaleString()}</TableCell>
                <TableCell>
                  {a.actor?.name || a.actor?.id || '–'} <span className="text-xs text-muted-foreground">{a.actor?.kind}</span>
                </TableCell>
                <TableCell>
                  <code className="text-xs">{a.action}</code>
                </TableCell>
                <TableCell className="max-w-64 truncate text-xs" title={a.target}>
                  {a.target}
                </TableCell>
                <TableCell>
                  <Badge variant={a.outcome === 'success' ? 'success' : a.outcome === 'denied' ? 'warning' : 'destructive'}>
                    {a.outcome} {a.status ? `(${a.status})` : ''}
                  </Badge>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </div>
  );
}

function Admin() {
  const { role } = useSession();
  if (!can(role, 'admin')) {
    return <EmptyState title="Administration is for admins">Your role is {role}. Ask an admin if you need users, keys or the audit log.</EmptyState>;
  }
  return (
    <Tabs defaultValue="users">
      <TabsList>
        <TabsTrigger value="users">Users</TabsTrigger>
        <TabsTrigger value="keys">API keys</TabsTrigger>
        <TabsTrigger value="mcp">MCP adapters</TabsTrigger>
        <TabsTrigger value="audit">Audit log</TabsTrigger>
      </TabsList>
      <TabsContent value="mcp">
        <McpAdaptersTab />
      </TabsContent>
      <TabsContent value="users">
        <UsersTab />
      </TabsContent>
      <TabsContent value="keys">
        <ApiKeysTab />
      </TabsContent>
      <TabsContent value="audit">
        <AuditTab />
      </TabsContent>
    </Tabs>
  );
}

export default function AdminPage() {
  return (
    <AppShell page="admin" title="Administration">
      <Admin />
    </AppShell>
  );
}
