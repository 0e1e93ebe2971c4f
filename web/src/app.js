// The upload page of uploadsets.
//
// Uppy's Dashboard picks the files and controls each upload (pause, resume,
// cancel, retry); @uppy/tus moves the bytes over tus 1.0.0 and remembers every
// unfinished upload in localStorage, so adding the same file again after a
// reload continues from the server's offset. This file adds what uploadsets
// says on top of plain tus, each in one place, so it can be copied piece by piece:
//
//   the sets and their policy          GET /api/sets                  loadSets, restrictionsFor
//   sets that need an upload token     "auth": true; Authorization:   TokenPanel, bearer
//                                      Bearer on every request
//   where a finished file was placed   Upload-File-Name/-Url headers  placementReader
//   ... when that response was lost    the retry's HEAD, else         placementFromAPI
//                                      GET /api/uploads/{set}/{id}
//   why the server refused a file      "ERR_CODE: sentence" bodies    humanMessage
//   ... and the same words beforehand  the set's rules (policy.js)    checkBeforeAdding
//   uploads left unfinished last time  tus-js-client's URL storage    showUnfinished
//   a server that does not answer      tus retries, HEAD /api/sets    ConnectionBanner

import Uppy, { RestrictionError } from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'
import { DefaultHttpStack, Upload, defaultOptions as tusDefaults } from 'tus-js-client'
import { formatBytes, formatSize } from './bytes.js'
import { acceptsText, admit, isRefusal } from './policy.js'

const SELECTED_SET_KEY = 'uploadsets:set'

const byId = (id) => document.getElementById(id)

main().catch((err) => {
  console.error(err)
  showLoadError(`The page could not start: ${err.message}`)
})

async function main() {
  let sets
  try {
    sets = await loadSets()
  } catch (err) {
    console.error(err)
    showLoadError('Could not load the upload sets from the server. Check that it is running, then reload this page.')
    return
  }
  if (sets.length === 0) {
    showLoadError('This server has no upload sets. Add a set block to its config.hcl and restart it.')
    return
  }

  const select = byId('set')
  select.replaceChildren(
    ...sets.map((set) => new Option(set.auth ? `${set.name} — needs a token` : set.name, set.name)),
  )
  let current = initialSet(sets)
  select.value = current.name
  select.disabled = false

  // Upload tokens pasted to try a set with auth, by set name. Only in memory: a
  // token is a credential, and the app that mints it is where it belongs.
  const tokens = new Map()
  const bearer = (setName) => (tokens.has(setName) ? { Authorization: `Bearer ${tokens.get(setName)}` } : {})
  const needsToken = (set) => set.auth && !tokens.has(set.name)
  const everySetNeedsToken = sets.every((set) => set.auth)

  const list = new UploadList(byId('uploads'), byId('upload-list'), byId('announce'))
  const unfinished = new Map() // tus URL-storage key -> {set, row}
  const connection = new ConnectionBanner(byId('connection'))

  const uppy = new Uppy({
    autoProceed: true,
    restrictions: restrictionsFor(current),
    onBeforeFileAdded: (file) => checkBeforeAdding(uppy, current, file, needsToken(current)),
    // Uppy's words for a file added again while it is in the list; see checkBeforeAdding.
    locale: { strings: { noDuplicates: '%{fileName} is already in the list: it continues from where it stopped' } },
  })
    .use(Dashboard, {
      inline: true,
      target: '#dashboard',
      width: '100%',
      height: 360,
      theme: 'auto',
      note: noteFor(current, needsToken(current)),
      disabled: needsToken(current),
      proudlyDisplayPoweredByUppy: false,
      showLinkToFileUploadResult: true,
      showRemoveButtonAfterComplete: true,
    })
    .use(Tus, {
      endpoint: current.endpoint, // overridden per file below: a file keeps its set
      limit: 3,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      // Forget a finished upload, so the same file added again is a new upload
      // (and gets a new name) instead of "resuming" the finished one.
      removeFingerprintOnSuccess: true,
      // Send the name and type only; the server reads `filename`/`filetype`
      // (which @uppy/tus copies from these) or `name`/`type`.
      allowedMetaFields: ['name', 'type'],
      // The set's upload token, if it needs one (and one was pasted). Read when
      // each upload starts, so a retry sends the token given since.
      headers: (file) => bearer(file.uploadSet),
      httpStack: new SameOriginHttpStack(),
      onShouldRetry(err, attempt, options, next) {
        // A policy refusal stays a refusal: retrying cannot change the answer.
        const res = err.originalResponse
        const status = res?.getStatus() ?? 0
        if (isRefusal(status, res?.getBody())) return false
        const retry = next(err)
        if (retry && unreachable(status)) connection.lost()
        return retry
      },
      onError(err) {
        // Uppy shows err.message next to the file and in its notice; make it
        // the server's own sentence rather than tus-js-client's request dump.
        const res = err.originalResponse
        err.isRefusal = isRefusal(res?.getStatus() ?? 0, res?.getBody())
        err.message = humanMessage(err)
      },
    })

  // A set that needs a token the page does not have: the Dashboard is disabled
  // (or, when every set is so, not shown at all) and the panel says how to send one.
  const tokenPanel = new TokenPanel(byId('token'), everySetNeedsToken, {
    use: (set, token) => {
      tokens.set(set.name, token)
      uppy.hideInfo() // "needs an upload token", if a file was refused for want of one
      showSet()
    },
    forget: (set) => {
      tokens.delete(set.name)
      showSet()
    },
  })
  const showSet = () => {
    const locked = needsToken(current)
    uppy.setOptions({ restrictions: restrictionsFor(current) })
    uppy.getPlugin('Dashboard').setOptions({ note: noteFor(current, locked), disabled: locked })
    byId('dashboard').hidden = locked && everySetNeedsToken
    renderPolicy(current, tokens.has(current.name))
    tokenPanel.show(current, tokens.has(current.name))
  }
  select.addEventListener('change', () => {
    current = sets.find((set) => set.name === select.value) ?? current
    try {
      localStorage.setItem(SELECTED_SET_KEY, current.name)
    } catch {
      // Private browsing: the choice is simply not remembered.
    }
    showSet()
  })
  showSet()

  // A file keeps the set it was added to, and the Dashboard shows the current
  // set's rules: while files of a set are still on their way, the choice stays.
  const busyNote = byId('set-busy')
  uppy.on('state-update', () => {
    const busy = [...new Set(
      uppy.getFiles().filter((file) => !file.progress.uploadComplete && file.uploadSet).map((file) => file.uploadSet),
    )]
    const text = busy.length
      ? `Uploads to ${busy.map((name) => `“${name}”`).join(', ')} are on their way: the set can be changed when they finish or are removed.`
      : ''
    if (busyNote.textContent === text) return
    busyNote.textContent = text
    busyNote.hidden = !text
    select.disabled = busy.length > 0
    tokenPanel.busy(busy)
  })

  uppy.on('file-added', (file) => {
    // A file goes to the set that was selected when it was added, or to the
    // set in which the same file was left unfinished (so it resumes there).
    let set = current
    for (const [key, pending] of unfinished) {
      if (key.startsWith(`tus::tus-${file.id}-${pending.set.endpoint}::`)) {
        set = pending.set
        pending.row.remove()
        unfinished.delete(key)
      }
    }
    byId('pending').hidden = unfinished.size === 0
    uppy.setFileState(file.id, {
      uploadSet: set.name,
      tus: { endpoint: set.endpoint, onAfterResponse: placementReader(uppy, file.id) },
    })
    list.add(file.id, file.name, set.name, file.size)
  })

  uppy.on('upload-progress', (file, progress) => {
    if (file) list.progress(file.id, progress.bytesUploaded, progress.bytesTotal)
  })
  window.addEventListener('offline', () => connection.lost())
  uppy.on('upload-pause', (file, isPaused) => {
    if (file) list.paused(file.id, isPaused)
  })
  uppy.on('pause-all', () => list.pausedAll(true))
  uppy.on('resume-all', () => list.pausedAll(false))
  uppy.on('upload-retry', (file) => list.retrying(file.id))
  uppy.on('retry-all', (files) => files.forEach((file) => list.retrying(file.id)))

  uppy.on('upload-success', async (file, response) => {
    if (!file) return
    connection.back()
    let placed = uppy.getFile(file.id)?.placed
    if (!placed) {
      // The completing response did not reach us (or it was a HEAD that found
      // the upload already finished): ask the server where the file went.
      try {
        placed = await placementFromAPI(response.uploadURL, bearer(file.uploadSet))
      } catch (err) {
        console.error(err)
        list.refused(file.id, 'The upload finished, but the server did not say where the file was placed.')
        return
      }
    }
    if (uppy.getFile(file.id)) {
      // The Dashboard's preview link and "copy link" button point here.
      uppy.setFileState(file.id, { placed, uploadURL: placed.url })
    }
    list.placed(file.id, placed.name, placed.url)
  })

  uppy.on('upload-error', (file, error, response) => {
    if (!file) return
    list.refused(file.id, error.message)
    // A refused upload cannot be resumed into acceptance: forget it, so adding
    // the file again (after a fix, or in another set) starts afresh.
    const status = response?.status ?? 0
    const uploadURL = uppy.getFile(file.id)?.tus?.uploadUrl
    if (status >= 400 && status < 500 && uploadURL) forgetStoredUpload(uploadURL)
    // A refusal is an outcome, not a pause: it leaves the Dashboard (which holds
    // what is moving or can move again, with Retry for the rest) and stays in
    // the list with its reason, like a file refused before sending. Otherwise
    // Uppy would offer Retry and keep counting it as "Uploading 1 file".
    if (error.isRefusal) {
      uppy.removeFile(file.id)
      if (!uppy.getFiles().some((f) => f.error)) uppy.setState({ error: null })
    }
  })

  uppy.on('restriction-failed', (file, error) => {
    // Refused in the browser before any byte was sent (wrong type, too big):
    // show it in the list too, as the notice fades. A file that is already in
    // the Dashboard is not refused: checkBeforeAdding carried it on.
    if (!file?.name || uppy.getFile(file.id)) return
    list.refusedBeforeStart(file.name, current.name, error.message)
  })

  uppy.on('file-removed', (file) => list.removed(file.id))

  await showUnfinished(sets, unfinished, list, connection)
}

// ---------------------------------------------------------------------------
// The server's API

async function loadSets() {
  const res = await fetch('/api/sets', { headers: { Accept: 'application/json' } })
  if (!res.ok) throw new Error(`GET /api/sets: HTTP ${res.status}`)
  const { sets } = await res.json()
  // publicEndpoint is the API's own URL, for the snippet an app on another origin copies.
  return (sets ?? []).map((set) => ({ ...set, publicEndpoint: set.endpoint, endpoint: sameOrigin(set.endpoint) }))
}

// The API's URLs are absolute and built from the server's public_url. The page
// sends its requests to the origin it was loaded from instead (same server, same
// paths), so its Content-Security-Policy can stay connect-src 'self' whether it
// was opened as http://localhost:8080 or http://127.0.0.1:8080.
function sameOrigin(url) {
  const u = new URL(url, window.location.href)
  return window.location.origin + u.pathname + u.search
}

// Applies sameOrigin to every tus request, including the upload URL the server
// returns in its Location header.
class SameOriginHttpStack extends DefaultHttpStack {
  createRequest(method, url) {
    return super.createRequest(method, sameOrigin(url))
  }
}

// The set named by ?set=, else the last one chosen, else the first that takes
// uploads without a token.
function initialSet(sets) {
  const wanted = new URLSearchParams(window.location.search).get('set') ?? storedSetName()
  return sets.find((set) => set.name === wanted) ?? sets.find((set) => !set.auth) ?? sets[0]
}

function storedSetName() {
  try {
    return localStorage.getItem(SELECTED_SET_KEY)
  } catch {
    return null
  }
}

// Uppy's restrictions give the file picker its `accept` (a list of extensions;
// "anything except .exe" has no such form) and are a second check. The first is
// checkBeforeAdding, which refuses in the server's words; the server checks it
// all again.
function restrictionsFor(set) {
  return {
    maxFileSize: set.max_size > 0 ? set.max_size : null,
    allowedFileTypes: set.any_extension ? null : set.extensions.map((ext) => `.${ext}`),
  }
}

// checkBeforeAdding is Uppy's onBeforeFileAdded. The same file added again
// continues where it stopped, as the page's header promises: an upload on its
// way is left alone, a paused one resumes, a failed one is retried (from the
// server's offset), and a finished one is sent again as a new file (the set's
// naming rule names it). For the first three Uppy then shows its "duplicate"
// notice, whose words the locale above makes say so.
// Then the set's rules, refused with the server's sentence (policy.js). A set
// that needs a token the page has not been given takes nothing: the server would
// answer 401 (the Dashboard is disabled then; this also stops a paste or a drop).
function checkBeforeAdding(uppy, set, file, needsToken) {
  if (needsToken) {
    throw new RestrictionError(`Set “${set.name}” needs an upload token: paste one above to try it here`, { file })
  }
  const same = uppy.getFile(file.id)
  if (same && !same.isGhost) {
    if (!same.progress.uploadComplete) {
      if (same.error) uppy.retryUpload(same.id)
      else if (same.isPaused) uppy.pauseResume(same.id)
      return false
    }
    uppy.removeFile(same.id)
  }
  const reason = admit(set, file.name, file.size)
  if (reason) throw new RestrictionError(reason, { file })
  return true
}

// The completing response (the last PATCH, or a POST that carried the whole
// file) names the placed file: Upload-File-Name, percent-encoded like a URL path
// segment, and Upload-File-Url. Keep both on the Uppy file.
function placementReader(uppy, fileID) {
  return (req, res) => {
    const name = res.getHeader('Upload-File-Name')
    const url = res.getHeader('Upload-File-Url')
    if (name && url && uppy.getFile(fileID)) {
      uppy.setFileState(fileID, { placed: { name: decodeURIComponent(name), url } })
    }
  }
}

// "/uploads/{set}/{id}" in a tus upload URL -> {set, id}.
function uploadRef(uploadURL) {
  if (!uploadURL) return null
  const path = new URL(uploadURL, window.location.href).pathname
  const m = path.match(/\/uploads\/([^/]+)\/([^/]+)\/?$/)
  return m ? { set: decodeURIComponent(m[1]), id: decodeURIComponent(m[2]) } : null
}

async function uploadState(ref, headers = {}) {
  const res = await fetch(`/api/uploads/${encodeURIComponent(ref.set)}/${encodeURIComponent(ref.id)}`, {
    headers: { Accept: 'application/json', ...headers },
  })
  if (res.status === 404) return null
  if (!res.ok) throw new Error(`upload state: HTTP ${res.status}`)
  return res.json()
}

async function placementFromAPI(uploadURL, headers) {
  const ref = uploadRef(uploadURL)
  if (!ref) throw new Error(`not an upload URL: ${uploadURL}`)
  const state = await uploadState(ref, headers)
  if (state?.state !== 'complete' || !state.url) throw new Error(`upload ${ref.id} is ${state?.state ?? 'gone'}`)
  return { name: state.name, url: state.url }
}

// A failed request whose retry means the server is (or may be) away rather
// than answering: no response at all, or a gateway that could not reach it.
function unreachable(status) {
  return status === 0 || status === 502 || status === 504
}

// The server answers a refusal with "ERR_CODE: a sentence naming the set and the
// rule". Show the sentence; the code is for programs.
function humanMessage(err) {
  const res = err.originalResponse ?? err.cause?.originalResponse
  const status = res?.getStatus() ?? 0
  const body = (res?.getBody() ?? '').trim()
  if (status >= 400 && status < 500) {
    if (body) return capitalize(body.replace(/^ERR_[A-Z0-9_]+:\s*/, ''))
    return `The server refused this file (HTTP ${status}).`
  }
  if (status >= 500) return `The server could not take this file (HTTP ${status}). Retry in a moment.`
  return 'The connection to the server was lost. Retry when you are back online: the upload continues where it stopped.'
}

function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1)
}

// ---------------------------------------------------------------------------
// Uploads left unfinished by an earlier visit

async function forgetStoredUpload(uploadURL) {
  const storage = tusDefaults.urlStorage
  for (const entry of await storage.findAllUploads()) {
    if (entry.uploadUrl === uploadURL) await storage.removeUpload(entry.urlStorageKey)
  }
}

async function showUnfinished(sets, unfinished, list, connection) {
  const storage = tusDefaults.urlStorage
  let entries = []
  try {
    entries = await storage.findAllUploads()
  } catch {
    return
  }
  const listEl = byId('pending-list')
  for (const entry of entries) {
    const ref = uploadRef(entry.uploadUrl)
    const set = ref && sets.find((s) => s.name === ref.set)
    // A set with auth answers only with its token, which a reload forgot. The
    // entry stays: with a token again, the same file added again resumes.
    if (!set || set.auth) continue
    const name = entry.metadata?.filename ?? entry.metadata?.name ?? 'a file'
    let state
    try {
      state = await uploadState(ref)
    } catch (err) {
      if (err instanceof TypeError) connection.lost() // fetch's "no response"
      continue // Keep it: the server may only be briefly unreachable.
    }
    if (!state) {
      storage.removeUpload(entry.urlStorageKey) // expired or deleted on the server
      continue
    }
    if (state.state === 'complete') {
      // It finished, but the answer was lost: show where it went.
      const id = list.add(null, name, set.name, state.size)
      list.placed(id, state.name, state.url)
      storage.removeUpload(entry.urlStorageKey)
      continue
    }
    if (state.state === 'rejected') {
      list.refusedBeforeStart(name, set.name, capitalize(state.reason ?? 'The server refused this file.'))
      storage.removeUpload(entry.urlStorageKey)
      continue
    }

    const row = document.createElement('li')
    const label = document.createElement('span')
    label.className = 'pending-name'
    label.textContent = name
    const detail = document.createElement('span')
    detail.className = 'pending-detail'
    detail.textContent = `${set.name} · ${formatBytes(state.offset)} of ${formatBytes(state.size)} received`
    const discard = document.createElement('button')
    discard.type = 'button'
    discard.className = 'link-button'
    discard.textContent = 'Discard'
    discard.setAttribute('aria-label', `Discard the unfinished upload of ${name}`)
    discard.addEventListener('click', async () => {
      discard.disabled = true
      try {
        await Upload.terminate(entry.uploadUrl, { httpStack: new SameOriginHttpStack(), retryDelays: [] })
      } catch {
        // Already gone, or the server is away: either way stop offering it.
      }
      storage.removeUpload(entry.urlStorageKey)
      unfinished.delete(entry.urlStorageKey)
      row.remove()
      byId('pending').hidden = unfinished.size === 0
    })
    row.append(label, detail, discard)
    listEl.append(row)
    unfinished.set(entry.urlStorageKey, { set, row })
  }
  byId('pending').hidden = unfinished.size === 0
}

// ---------------------------------------------------------------------------
// What the page shows

function renderPolicy(set, hasToken) {
  const dl = byId('policy')
  const rows = [
    ['Accepts', acceptsText(set)],
    ['Largest file', set.max_size > 0 ? formatSize(set.max_size) : 'No limit'],
    ['Names', set.naming === 'uuid'
      ? 'Each file gets a new random name'
      : 'Kept as sent; a number is added when the name is taken'],
  ]
  if (set.auth) {
    rows.push(['Access', hasToken ? 'With the token you pasted' : 'Needs an upload token from your app'])
  }
  dl.replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt')
      dt.textContent = term
      const dd = document.createElement('dd')
      dd.textContent = value
      return [dt, dd]
    }),
  )
}

// The Dashboard's note says what the policy box says, in one line.
function noteFor(set, needsToken) {
  if (needsToken) return `Set “${set.name}” needs an upload token: see above`
  const accepts = acceptsText(set)
  const size = set.max_size > 0 ? `up to ${formatSize(set.max_size)} each` : 'of any size'
  return `Set “${set.name}”: ${accepts.charAt(0).toLowerCase()}${accepts.slice(1)}, ${size}`
}

function showLoadError(message) {
  const p = byId('load-error')
  p.textContent = message
  p.hidden = false
  const select = byId('set')
  select.replaceChildren(new Option('No sets', ''))
  select.disabled = true
}

// The panel under the policy of a set with auth: that its uploads need a token
// from the developer's app, how to send one (the snippet to copy, with the
// set's own endpoint), and a field to paste one from `uploadsets token` and try
// the set from this page. A pasted token goes to the page's memory (use), never
// to storage; it can be forgotten unless uploads to its set are on their way.
class TokenPanel {
  #el
  #all
  #on
  #set = null
  #busy = []

  constructor(el, everySetNeedsToken, on) {
    this.#el = el
    this.#all = everySetNeedsToken
    this.#on = on
    byId('token-form').addEventListener('submit', (e) => {
      e.preventDefault()
      const input = byId('token-input')
      const { token, problem } = readToken(input.value)
      const error = byId('token-error')
      error.textContent = problem ?? ''
      error.hidden = !problem
      if (problem) {
        input.focus()
        return
      }
      input.value = ''
      this.#on.use(this.#set, token)
      byId('token-forget').focus()
    })
    byId('token-forget').addEventListener('click', () => {
      this.#on.forget(this.#set)
      byId('token-input').focus()
    })
  }

  show(set, hasToken) {
    this.#set = set
    this.#el.hidden = !set.auth
    if (!set.auth) return
    byId('token-intro').textContent = this.#all
      ? 'Every set on this server needs an upload token from your app, so this page cannot upload on its own. ' +
        'Your app sends the token with every tus request:'
      : `Uploads to “${set.name}” need an upload token from your app, sent with every tus request:`
    byId('token-snippet').textContent = [
      'uppy.use(Tus, {',
      `  endpoint: '${set.publicEndpoint}',`,
      "  headers: { Authorization: 'Bearer ' + token },",
      '})',
    ].join('\n')
    byId('token-command').textContent = `uploadsets token -set ${set.name}`
    byId('token-form').hidden = hasToken
    byId('token-using').hidden = !hasToken
    if (hasToken) byId('token-error').hidden = true
    this.#renderBusy()
  }

  // busy is the names of the sets with uploads on their way.
  busy(names) {
    this.#busy = names
    this.#renderBusy()
  }

  #renderBusy() {
    byId('token-forget').disabled = Boolean(this.#set && this.#busy.includes(this.#set.name))
  }
}

// readToken checks that what was pasted has the shape of a JWT (and has not
// expired, if it says when); the server checks the rest.
function readToken(text) {
  const token = text.trim().replace(/^Bearer\s+/i, '')
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
    return { problem: 'This is not an upload token: paste the whole line that uploadsets token printed.' }
  }
  let claims
  try {
    claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
  } catch {
    return { problem: 'This is not an upload token: its middle part is not JSON.' }
  }
  if (typeof claims?.exp === 'number' && claims.exp * 1000 <= Date.now()) {
    const when = new Date(claims.exp * 1000).toLocaleString()
    return { problem: `This token expired on ${when}: make a new one.` }
  }
  return { token }
}

// "Reconnecting" while the server does not answer: shown when tus-js-client
// retries a request that got no response (or the browser goes offline), and
// cleared when a HEAD /api/sets is answered again (probed every second) or an
// upload finishes. tus-js-client resumes on its own meanwhile, within its
// retryDelays; an upload that outlasts them stops with Retry.
class ConnectionBanner {
  #el
  #timer = 0

  constructor(el) {
    this.#el = el
  }

  lost() {
    this.#el.hidden = false
    this.#timer ||= setTimeout(() => this.#probe(), 1000)
  }

  back() {
    clearTimeout(this.#timer)
    this.#timer = 0
    this.#el.hidden = true
  }

  async #probe() {
    try {
      const res = await fetch('/api/sets', { method: 'HEAD', cache: 'no-store', signal: AbortSignal.timeout(3000) })
      if (res.ok && navigator.onLine !== false) {
        this.back()
        return
      }
    } catch {
      // Still away.
    }
    if (this.#timer) this.#timer = setTimeout(() => this.#probe(), 1000)
  }
}

// One row per file: its set, bytes and speed while it moves, then the placed
// file's name as a link, or the server's reason for refusing it. The Dashboard
// above holds the controls; this list keeps the outcome after it is cleared.
class UploadList {
  #section
  #ul
  #announce
  #rows = new Map()
  #seq = 0
  #dirty = new Set()
  #frame = 0

  constructor(section, ul, announce) {
    this.#section = section
    this.#ul = ul
    this.#announce = announce
    // Refresh the speed of uploads that have gone quiet.
    setInterval(() => {
      for (const row of this.#rows.values()) if (row.state === 'uploading') this.#mark(row)
    }, 1000)
  }

  add(fileID, name, setName, size) {
    const id = fileID ?? `restored-${++this.#seq}`
    // The same file added again: a cancelled row gives way, an outcome stays.
    const old = this.#rows.get(id)
    if (old?.state === 'cancelled') old.li.remove()
    const li = document.createElement('li')
    li.className = 'upload'
    const nameEl = document.createElement('span')
    nameEl.className = 'upload-name'
    nameEl.textContent = name
    const setEl = document.createElement('span')
    setEl.className = 'upload-set'
    setEl.textContent = setName
    const status = document.createElement('span')
    status.className = 'upload-status'
    li.append(nameEl, setEl, status)
    this.#ul.prepend(li)
    this.#section.hidden = false
    const row = { id, name, li, status, state: 'waiting', size, bytes: 0, speed: 0, lastT: 0, lastB: 0 }
    this.#rows.set(id, row)
    this.#render(row)
    return id
  }

  progress(id, bytes, total) {
    const row = this.#rows.get(id)
    if (!row || row.state === 'placed' || row.state === 'refused') return
    const now = performance.now()
    if (row.state !== 'uploading' || row.lastT === 0 || bytes < row.lastB) {
      // First news (perhaps a resume that starts far in): a baseline, no speed yet.
      row.lastT = now
      row.lastB = bytes
      row.speed = 0
    } else if (now - row.lastT >= 500) {
      const rate = ((bytes - row.lastB) * 1000) / (now - row.lastT)
      row.speed = row.speed ? 0.6 * row.speed + 0.4 * rate : rate
      row.lastT = now
      row.lastB = bytes
    }
    row.state = 'uploading'
    row.bytes = bytes
    if (total) row.size = total
    this.#mark(row)
  }

  paused(id, isPaused) {
    const row = this.#rows.get(id)
    if (!row || row.state === 'placed' || row.state === 'refused' || row.state === 'cancelled') return
    row.state = isPaused ? 'paused' : 'uploading'
    row.lastT = 0
    this.#mark(row)
  }

  pausedAll(isPaused) {
    for (const row of this.#rows.values()) this.paused(row.id, isPaused)
  }

  retrying(id) {
    const row = this.#rows.get(id)
    if (!row) return
    row.state = 'uploading'
    row.lastT = 0
    this.#mark(row)
  }

  placed(id, finalName, url) {
    const row = this.#rows.get(id)
    if (!row) return
    row.state = 'placed'
    row.finalName = finalName
    row.url = url
    this.#render(row)
    this.#say(`${row.name} saved as ${finalName}.`)
  }

  refused(id, reason) {
    const row = this.#rows.get(id)
    if (!row) return
    row.state = 'refused'
    row.reason = reason
    this.#render(row)
    this.#say(`${row.name} was not uploaded: ${reason}`)
  }

  refusedBeforeStart(name, setName, reason) {
    this.refused(this.add(null, name, setName, 0), reason)
  }

  removed(id) {
    const row = this.#rows.get(id)
    if (!row || row.state === 'placed' || row.state === 'refused') return
    row.state = 'cancelled'
    this.#render(row)
  }

  #say(text) {
    this.#announce.textContent = text
  }

  #mark(row) {
    this.#dirty.add(row)
    this.#frame ||= requestAnimationFrame(() => {
      this.#frame = 0
      for (const r of this.#dirty) this.#render(r)
      this.#dirty.clear()
    })
  }

  #render(row) {
    const { li, status } = row
    const changed = li.dataset.state !== row.state
    li.dataset.state = row.state
    switch (row.state) {
      case 'waiting':
        status.textContent = 'Waiting…'
        break
      case 'uploading': {
        const quiet = performance.now() - row.lastT > 3000
        const speed = row.speed && !quiet ? ` · ${formatBytes(row.speed)}/s` : ''
        status.textContent = `${formatBytes(row.bytes)} of ${formatBytes(row.size)}${speed}`
        break
      }
      case 'paused':
        status.textContent = `Paused at ${formatBytes(row.bytes)} of ${formatBytes(row.size)}`
        break
      case 'cancelled':
        status.textContent = 'Cancelled'
        break
      case 'placed':
        if (changed) {
          const link = document.createElement('a')
          link.className = 'upload-link'
          link.href = row.url
          link.textContent = row.finalName
          status.replaceChildren('Saved as ', link)
        }
        break
      case 'refused':
        status.textContent = row.reason
        break
    }
  }
}
