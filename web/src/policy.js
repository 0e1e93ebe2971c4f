// A set's policy as the page applies it before sending, in the server's words.
//
// The server decides (sets.Admit at creation, the content check at the end); the
// page only refuses early what the server would refuse anyway, with the sentence
// the server would send, so a person reads the same reason whichever refused.
// Keep admit in step with sets/policy.go and extensionOf with sets/naming.go.

import { formatSize } from './bytes.js'

// The codes of hooks.responses (a set's policy) and of an upload whose record
// says it was refused: the same request can never succeed, so the page neither
// retries it nor offers to. Everything else (5xx, a lost connection, tus's own
// 409/423) may succeed later.
const REFUSAL_CODES = new Set([
  'ERR_FILE_NAME_MISSING',
  'ERR_EXTENSION_NOT_ALLOWED',
  'ERR_UPLOAD_TOO_LARGE',
  'ERR_CONTENT_MISMATCH',
  'ERR_UPLOAD_REJECTED',
  'ERR_UPLOAD_LENGTH_REQUIRED',
])

// isRefusal reports whether a response is a policy refusal: a 4xx whose body
// starts with one of the codes above ("ERR_CODE: sentence").
export function isRefusal(status, body) {
  if (!(status >= 400 && status < 500)) return false
  const code = String(body ?? '').trim().match(/^(ERR_[A-Z0-9_]+):/)?.[1]
  return REFUSAL_CODES.has(code)
}

// extensionOf returns the lower-case extension (no dot) of the name the server
// would give the file (sets.SafeName, then sets.Ext): "" for none, null when no
// usable name is left. Only what changes the extension is mirrored.
export function extensionOf(name) {
  let s = String(name ?? '')
  s = s.slice(Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\')) + 1)
  s = s.replace(/\p{C}/gu, '').normalize('NFC')
  s = s.replace(/^[.\s]+|[.\s]+$/gu, '')
  s = s.replace(/\s+/gu, '_').replace(/[<>:"|?*%#;]/g, '_')
  if (s === '') return null
  const dot = s.lastIndexOf('.')
  return dot <= 0 ? '' : s.slice(dot + 1).toLowerCase()
}

// allows mirrors sets.Extensions.Allows.
export function allows(set, ext) {
  if (set.any_extension) return !(set.excluded ?? []).includes(ext)
  return ext !== '' && set.extensions.includes(ext)
}

// rulesText mirrors sets.Extensions.String: "jpg, png", "any", "any except dll, exe".
function rulesText(set) {
  const list = (set.any_extension ? set.excluded : set.extensions) ?? []
  if (set.any_extension) return list.length ? `any except ${list.join(', ')}` : 'any'
  return list.length ? list.join(', ') : 'none'
}

// admit is sets.Admit: null, or the sentence the server refuses the file with
// (without its ERR_ code, capitalised as the page shows every refusal).
export function admit(set, name, size) {
  const q = (s) => JSON.stringify(s) // Go's %q, for the names that reach here
  const refuse = (rest) => `Set ${q(set.name)} ${rest}`
  const ext = extensionOf(name)
  if (ext === null) {
    return refuse('needs a file name: send it as "filename" (or "name") in Upload-Metadata')
  }
  if (!allows(set, ext)) {
    if (ext === '') return refuse(`does not accept files without an extension (allowed: ${rulesText(set)})`)
    return refuse(`does not accept ${q(`.${ext}`)} files (allowed: ${rulesText(set)})`)
  }
  if (set.max_size > 0 && size > set.max_size) {
    return refuse(`accepts files up to ${formatSize(set.max_size)}; this one is ${formatSize(size)} (${size} bytes)`)
  }
  return null
}

// acceptsText is what the policy box and the Dashboard's note say a set takes.
export function acceptsText(set) {
  const dotted = (exts) => exts.map((ext) => `.${ext}`).join(', ')
  if (!set.any_extension) return set.extensions.length ? dotted(set.extensions) : 'No file'
  if (set.excluded?.length) return `Any file except ${dotted(set.excluded)}`
  return 'Any file'
}
