// The one error type of config/: a single line naming the setting, the bad value and the accepted
// form, so the CLI can print it as is and exit 2.

export class ConfigError extends Error {
  /** The flag ("--ipvs-sync-period") or file field ("ipvs.syncPeriod in /etc/kp.yaml"). */
  readonly setting: string;
  /** The offending value as the user wrote it; undefined when the error is not about a value. */
  readonly value: string | undefined;

  constructor(message: string, setting: string, value?: string) {
    // Multi-line messages would break the CLI's one-line error contract.
    super(message.replace(/\s*\n\s*/g, ' '));
    this.name = 'ConfigError';
    this.setting = setting;
    this.value = value;
  }

  /** `invalid value "<value>" for <setting>: expected <expected>`. */
  static invalid(setting: string, value: string, expected: string): ConfigError {
    return new ConfigError(`invalid value ${JSON.stringify(value)} for ${setting}: expected ${expected}`, setting, value);
  }
}
