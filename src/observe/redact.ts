// Credentials never reach a log line or an error a user sees. Two nets: the secrets we know
// (the kubeconfig's token, password, client key, auth-provider tokens: registered once loaded) are
// replaced wherever they appear, and anything shaped like a credential (a Bearer/Basic header, a
// JWT, a URL's user:password@, a token= query, a "token: …" pair) is masked whatever its source,
// since an API server or proxy may echo our request back in an error body.

export const REDACTED = '[redacted]';

/** Shorter registered values would mask ordinary words; real credentials are far longer. */
const MIN_SECRET_LENGTH = 8;

const CREDENTIAL_KEYS = 'token|access[_-]?token|id[_-]?token|refresh[_-]?token|password|passwd|client[_-]?secret|client-key-data|secret';

const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // An Authorization header, echoed as a header line or inside JSON.
  [/\b(Bearer|Basic)(\s+)[^\s"',;)}\]]+/gi, `$1$2${REDACTED}`],
  [/(\bauthorization\b["']?\s*[:=]\s*["']?)[^"'\n,;}]+/gi, `$1${REDACTED}`],
  // https://user:password@host → https://[redacted]@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@?#"']+@/gi, `$1${REDACTED}@`],
  [new RegExp(`([?&](?:${CREDENTIAL_KEYS})=)[^&\\s"'#]+`, 'gi'), `$1${REDACTED}`],
  // Service account tokens and OIDC id tokens are JWTs.
  [/\beyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]*/g, REDACTED],
  // "token: x", "password=x", "\"token\":\"x\"" (YAML, env, JSON).
  [new RegExp(`(\\b(?:${CREDENTIAL_KEYS})["']?\\s*[:=]\\s*["']?)(?!\\[redacted\\])[^\\s"',;}]+`, 'gi'), `$1${REDACTED}`],
];

/** Masks credential-shaped text; use the Redactor to also mask known secrets. */
export function redactPatterns(text: string): string {
  let out = text;
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Registers secret values (empty and very short ones are ignored). */
  add(...values: ReadonlyArray<string | undefined>): void {
    for (const v of values) {
      const s = v?.trim();
      if (s !== undefined && s.length >= MIN_SECRET_LENGTH) this.secrets.add(s);
    }
  }

  /** The text with every known secret and every credential-shaped string masked. */
  readonly redact = (text: string): string => {
    let out = text;
    // Longest first, so a secret containing another is masked whole.
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length)) {
      if (out.includes(s)) out = out.split(s).join(REDACTED);
    }
    return redactPatterns(out);
  };
}
