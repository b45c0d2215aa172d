// The line chart of the dashboard's system health cards, in its own chunk (recharts and d3
// are most of the page's script): DashboardPage loads it after its first render.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { HealthPoint } from './DashboardPage';

export default function HealthLineChart({
  data,
  lines,
  unit,
}: {
  data: HealthPoint[];
  lines: { key: keyof HealthPoint; name: string; color: string }[];
  unit?: string;
}) {
  return (
    <ResponsiveContainer width="100%" height="100%">
      <LineChart data={data} margin={{ top: 4, right: 8, bottom: 0, left: -16 }}>
        <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
        <XAxis dataKey="time" tick={{ fontSize: 10 }} minTickGap={40} />
        <YAxis tick={{ fontSize: 10 }} allowDecimals />
        <Tooltip formatter={(v) => (typeof v === 'number' ? `${v.toFixed(2)}${unit ?? ''}` : String(v))} />
        {lines.length > 1 ? <Legend wrapperStyle={{ fontSize: 11 }} /> : null}
        {lines.map((l) => (
          <Line key={String(l.key)} type="monotone" dataKey={l.key as string} name={l.name} stroke={l.color} dot={false} isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </ResponsiveContainer>
  );
}
