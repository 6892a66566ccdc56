// Timestamps as Go's encoding/json writes a time.Time (RFC 3339 with trailing fractional zeros
// trimmed), so clients parsing kube-proxy's health JSON read ours unchanged.

/** Go's zero time.Time, which kube-proxy reports before anything has been synced. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

export function formatGoTime(epochMs: number | undefined): string {
  if (epochMs === undefined) return GO_ZERO_TIME;
  const iso = new Date(epochMs).toISOString();
  // "…:05.120Z" → "…:05.12Z", "…:05.000Z" → "…:05Z".
  return iso.replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits ? `.${digits}Z` : 'Z'));
}
