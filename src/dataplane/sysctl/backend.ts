// Kernel settings under /proc/sys. Implemented for real and in memory (fake).

export interface SysctlBackend {
  /** The value as the kernel prints it, trimmed; undefined when the key does not exist. */
  read(key: string): Promise<string | undefined>;
  write(key: string, value: string): Promise<void>;
}
