// Numbers as people read them.

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** 1234567 -> "1.2 MB" (powers of 1000, as disks are sold). */
export function bytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return "unknown size";
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** Bytes per second -> "12.3 MB/s". */
export function rate(n: number): string {
  return n > 0 ? `${bytes(n)}/s` : "—";
}

/** Seconds -> "3 h 12 min", "45 s". */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min ${s % 60} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

/** "1 item", "3 items". */
export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${n.toLocaleString("en")} ${n === 1 ? noun : many}`;
}

/** A share from 0 to 100, or null when the total is unknown. */
export function percent(done: number, total: number): number | null {
  if (total <= 0) return null;
  return Math.min(100, (done / total) * 100);
}

/** A limit in bytes per second as people type it: 20971520 -> "20M". */
export function limitText(n: number | null | undefined): string {
  if (!n) return "";
  if (n % 1073741824 === 0) return `${n / 1073741824}G`;
  if (n % 1048576 === 0) return `${n / 1048576}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}
