// The one error of the text codecs (ipvsadm, ipset and iptables save formats): it names the tool,
// the 1-based line number and the offending line, so an operator can find it in a dump.

export type TextFormat = 'ipvsadm' | 'ipset' | 'iptables';

export class TextParseError extends Error {
  /** Stable code for callers that branch on errors. */
  readonly code = 'PARSE' as const;
  readonly format: TextFormat;
  /** 1-based line number in the parsed text. */
  readonly line: number;
  /** The offending line, as it was. */
  readonly text: string;

  constructor(format: TextFormat, line: number, text: string, reason: string) {
    super(`${format} text line ${line}: ${reason}: ${JSON.stringify(text)}`);
    this.name = 'TextParseError';
    this.format = format;
    this.line = line;
    this.text = text;
  }
}

/** A line's parser says what is wrong with it; atLine adds the format, number and text. */
class LineError extends Error {}

export function failLine(reason: string): never {
  throw new LineError(reason);
}

/** Runs `parse` on line `n`, turning its failLine into a TextParseError naming that line. */
export function atLine<T>(format: TextFormat, n: number, line: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof LineError) throw new TextParseError(format, n, line, e.message);
    throw e;
  }
}

export function isTextParseError(e: unknown): e is TextParseError {
  return e instanceof TextParseError;
}

/** Lines of a text with their 1-based numbers; a trailing newline does not make an extra line. */
export function numberedLines(text: string): { readonly n: number; readonly line: string }[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  // Tolerate CRLF files: the tools never print \r, so it can only be a transport artefact.
  return lines.map((line, i) => ({ n: i + 1, line: line.endsWith('\r') ? line.slice(0, -1) : line }));
}
