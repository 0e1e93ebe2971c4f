// Sizes for people, in the server's units.
//
// The server's limits are binary (max_size = "2MiB"), so the page never says
// "MB" for MiB: formatBytes is the one formatter for sizes that move (files,
// progress, speed), and build.mjs makes Uppy use it too, by aliasing the
// package Uppy formats with (@transloadit/prettier-bytes, which divides by 1024
// but prints "MB") to this file. formatSize is the server's own rendering of a
// limit (sets.FormatSize), for the words the page repeats after it.

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

// formatBytes: "0 B", "512 B", "1.5 KiB", "16 MiB", "123 MiB"; one decimal below 100.
export function formatBytes(n) {
  let v = Math.max(Number(n) || 0, 0)
  let i = 0
  while (v >= 1024 && i < BINARY.length - 1) {
    v /= 1024
    i++
  }
  const digits = i === 0 || v >= 100 ? 0 : 1
  return `${v.toFixed(digits).replace(/\.0$/, '')} ${BINARY[i]}`
}

// The name Uppy imports (see the alias in build.mjs).
export { formatBytes as prettierBytes }

// sets.FormatSize in sets/size.go: the biggest unit that shows the value exactly
// to two decimals (decimal units too, so "1GB" in a config reads back as "1 GB"),
// else the biggest binary unit, rounded down. Keep the two in step.
const SERVER_UNITS = [
  { name: 'GiB', n: 2 ** 30, binary: true },
  { name: 'GB', n: 1e9, binary: false },
  { name: 'MiB', n: 2 ** 20, binary: true },
  { name: 'MB', n: 1e6, binary: false },
  { name: 'KiB', n: 2 ** 10, binary: true },
  { name: 'KB', n: 1e3, binary: false },
]

export function formatSize(n) {
  if (n < 0) return `${n} B`
  for (const u of SERVER_UNITS) {
    if (n >= u.n && ((n % u.n) * 100) % u.n === 0) return `${units(n, u.n)} ${u.name}`
  }
  for (const u of SERVER_UNITS) {
    if (u.binary && n >= u.n) return `${units(n, u.n)} ${u.name}`
  }
  return `${n} B`
}

// n/unit with up to two decimals, rounded down, trailing zeros dropped.
function units(n, unit) {
  const whole = Math.floor(n / unit)
  const cents = Math.floor(((n % unit) * 100) / unit)
  if (cents === 0) return String(whole)
  return `${whole}.${String(cents).padStart(2, '0').replace(/0+$/, '')}`
}
