// Browser test of the upload page, against the real server binary.
//
//   cd web && npm ci && UPLOADSETS_BIN=/path/to/uploadsets node --test test/
//
// Starts `uploadsets serve` on a free port with its own config and directories,
// drives Debian's Chromium (/usr/bin/chromium, never a downloaded browser) with
// playwright-core, and checks what a person sees: the final name as a working
// link, two files of one name kept apart, an upload that survives a reload
// mid-way without sending again what the server already has, and refusals in
// the server's own words, and a set with auth shown as needing a token (no
// request to it until one is pasted). Screenshots go to test/artifacts/ (git-ignored).
// Every wait is bounded.

import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { deflateSync } from 'node:zlib'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
const artifacts = path.join(here, 'artifacts')
const BIN = process.env.UPLOADSETS_BIN
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const MiB = 1024 * 1024

const WAIT = 15_000 // one UI step
const UPLOAD_WAIT = 60_000 // one upload to its end

let tmp // scratch directory of this run
let configText // the server's config, less its listen line
let server // { url, stop, kill, log }
let context // Playwright persistent context (a fresh profile)
let page
const pageProblems = [] // CSP violations, uncaught errors, requests leaving the origin
const privateRequests = [] // every request the page made for the set with auth: {method, url, authorization}

before(async () => {
  assert.ok(BIN, 'set UPLOADSETS_BIN to the built server binary (go build -o bin/uploadsets ./cmd/uploadsets)')
  assert.ok(existsSync(BIN), `UPLOADSETS_BIN=${BIN} does not exist`)
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`)

  tmp = await mkdtemp(path.join(tmpdir(), 'uploadsets-page-'))
  await writeFile(path.join(tmp, 'jwt.key'), `${randomBytes(32).toString('hex')}\n`)
  configText = `data_dir = "${path.join(tmp, 'data')}"
uploads_default_dest = "${path.join(tmp, 'uploads')}"

set "photos" {
  extensions = images
  max_size   = "2MiB"
}

set "files" {
  extensions = all
  max_size   = "64MiB"
}

# Uppy's restrictions cannot express "anything except": the page refuses .exe itself.
set "notes" {
  extensions = all_except(["exe"])
  max_size   = "1MiB"
}

# Uploads need an upload token; the page has none unless one is pasted.
set "private" {
  extensions = all
  max_size   = "1MiB"
  auth {
    secret_file = "${path.join(tmp, 'jwt.key')}"
  }
}
`
  server = await serve('127.0.0.1:0')

  const profile = path.join(tmp, 'profile')
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  })
  context.setDefaultTimeout(WAIT)
  context.setDefaultNavigationTimeout(WAIT)
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`)
    })
  })
  page = context.pages()[0] ?? (await context.newPage())
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /CSP violation|Content Security Policy/.test(msg.text())) {
      pageProblems.push(msg.text())
    }
  })
  page.on('pageerror', (err) => pageProblems.push(`uncaught: ${err.message}`))
  page.on('request', async (req) => {
    const u = new URL(req.url())
    if (!/^\/(api\/)?uploads\/private\//.test(u.pathname)) return
    const entry = { method: req.method(), url: req.url(), authorization: null }
    privateRequests.push(entry)
    entry.authorization = (await req.allHeaders().catch(() => ({}))).authorization ?? null
  })
  page.on('request', (req) => {
    const u = req.url()
    if (!u.startsWith(`${server.url}/`) && !/^(data|blob):/.test(u)) pageProblems.push(`left the origin: ${u}`)
  })

  await page.goto(`${server.url}/`)
  await page.locator('#set:not([disabled])').waitFor()
  await mkdir(artifacts, { recursive: true })
})

after(async () => {
  await context?.close().catch(() => {})
  await server?.stop()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

test('the page offers the sets with their rules, and is keyboard operable', async () => {
  const select = page.getByLabel('Upload set')
  const options = await select.locator('option').allTextContents()
  assert.deepEqual(options, ['photos', 'files', 'notes', 'private — needs a token'])

  // Keyboard: Tab reaches the set selector, and the arrow keys change the set.
  await page.locator('body').focus()
  let reached = false
  for (let i = 0; i < 10 && !reached; i++) {
    await page.keyboard.press('Tab')
    reached = await page.evaluate(() => document.activeElement?.id === 'set')
  }
  assert.ok(reached, 'Tab never reached the set selector')
  reached = false
  for (let i = 0; i < 10 && !reached; i++) {
    await page.keyboard.press('Tab')
    reached = await page.evaluate(() => document.activeElement?.textContent.trim() === 'browse files')
  }
  assert.ok(reached, 'Tab never reached the Dashboard\'s "browse files" button')
  await select.selectOption('photos')
  await select.focus()
  await page.keyboard.press('ArrowDown')
  assert.equal(await select.inputValue(), 'files')
  await select.selectOption('photos')

  const policy = await page.locator('#policy').innerText()
  assert.match(policy, /2 MiB/)
  assert.match(policy, /\.png/)
  const accept = await page.locator('input.uppy-Dashboard-input[type=file]').first().getAttribute('accept')
  const accepted = (accept ?? '').split(/,\s*/)
  assert.ok(accepted.includes('.png'), `file input accept=${accept}`)
  assert.ok(!accepted.includes('.txt'), `file input accept=${accept}`)

  // Every control has a name a screen reader can say.
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll('button, select, a[href], input:not([type=file])')]
      .filter((el) => el.offsetParent !== null)
      .filter((el) => {
        const labelled = el.labels?.length || el.getAttribute('aria-labelledby')
        const name = el.getAttribute('aria-label') || el.getAttribute('title') || el.textContent.trim()
        return !labelled && !name
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  )
  assert.deepEqual(unnamed, [])
})

test('a set with auth is shown as needing a token, says how to send one, and is never uploaded to', { timeout: 60_000 }, async () => {
  const select = page.getByLabel('Upload set')
  await select.selectOption('private')
  const panel = page.locator('#token')
  await panel.waitFor({ state: 'visible' })
  assert.match(await page.locator('#policy').innerText(), /Access\s+Needs an upload token from your app/)

  // How to send one: @uppy/tus's headers option, with the set's own endpoint,
  // and the command that prints a token to try it with.
  assert.equal(
    await page.locator('#token-snippet').innerText(),
    [
      'uppy.use(Tus, {',
      `  endpoint: '${server.url}/uploads/private/',`,
      "  headers: { Authorization: 'Bearer ' + token },",
      '})',
    ].join('\n'),
  )
  const text = await panel.innerText()
  assert.match(text, /^Uploads to “private” need an upload token from your app/)
  assert.match(text, /tus-js-client takes the same headers option/)
  assert.match(text, /uploadsets token -set private/)

  // The Dashboard is disabled, and its note says why.
  const dashboard = page.locator('.uppy-Dashboard')
  await poll('the Dashboard to be disabled', WAIT, async () => ((await dashboard.getAttribute('aria-disabled')) === 'true' ? true : null))
  assert.equal((await page.locator('.uppy-Dashboard-note').first().innerText()).trim(), 'Set “private” needs an upload token: see above')
  assert.ok(await page.getByRole('button', { name: 'browse files' }).isDisabled())
  const input = page.locator('input.uppy-Dashboard-input[type=file]:not([webkitdirectory])').first()
  assert.ok(await input.isDisabled())
  // A file that reaches Uppy anyway (as a paste could) is refused in the page.
  await input.setInputFiles([{ name: 'nope.txt', mimeType: 'text/plain', buffer: Buffer.from('no token\n') }])
  assert.equal(await refused('nope.txt'), 'Set “private” needs an upload token: paste one above to try it here')
  assert.deepEqual(privateRequests, [], 'the page made a request for the set with auth')

  await page.screenshot({ path: path.join(artifacts, 'page-token.png'), fullPage: true })
  await page.setViewportSize({ width: 375, height: 812 })
  try {
    await page.waitForTimeout(300) // let the Dashboard measure its new width
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 375px screen`)
    await page.screenshot({ path: path.join(artifacts, 'page-token-375.png'), fullPage: true })
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 })
  }

  // The other sets are as they were: no panel, the Dashboard enabled.
  await select.selectOption('files')
  await panel.waitFor({ state: 'hidden' })
  await poll('the Dashboard to be enabled', WAIT, async () => ((await dashboard.getAttribute('aria-disabled')) === 'false' ? true : null))
  assert.doesNotMatch(await page.locator('#policy').innerText(), /token/)
  await addFiles([{ name: 'open.txt', mimeType: 'text/plain', buffer: Buffer.from('no token needed\n') }])
  const { href } = await placed('open.txt')
  assert.deepEqual(await download(href), Buffer.from('no token needed\n'))
  assert.deepEqual(privateRequests, [], 'the page made a request for the set with auth')
})

test('a pasted token uploads into its set, and is kept in memory only', { timeout: 90_000 }, async () => {
  const { stdout } = await promisify(execFile)(BIN, ['token', '-set', 'private', '-sub', 'page-test', '-config', path.join(tmp, 'config.hcl')], {
    timeout: WAIT,
  })
  const token = stdout.trim()
  const select = page.getByLabel('Upload set')
  await select.selectOption('private')
  const input = page.getByLabel(/paste a token/)

  // Not a token: said so, and nothing changes.
  await input.fill('my-secret-password')
  await page.getByRole('button', { name: 'Use token' }).click()
  assert.match(await page.locator('#token-error').innerText(), /^This is not an upload token/)
  assert.equal(await page.locator('.uppy-Dashboard').getAttribute('aria-disabled'), 'true')

  await input.fill(token)
  await input.press('Enter')
  await page.locator('#token-using').waitFor({ state: 'visible' })
  assert.ok(await page.locator('#token-error').isHidden())
  assert.match(await page.locator('#policy').innerText(), /Access\s+With the token you pasted/)
  await poll('the Dashboard to be enabled', WAIT, async () =>
    (await page.locator('.uppy-Dashboard').getAttribute('aria-disabled')) === 'false' ? true : null,
  )
  const body = Buffer.from('sent with a token\n')
  await addFiles([{ name: 'secret.txt', mimeType: 'text/plain', buffer: body }])
  const { name, href } = await placed('secret.txt')
  assert.equal(name, 'secret.txt')
  await closeAddPanel()
  await page.screenshot({ path: path.join(artifacts, 'page-token-pasted.png'), fullPage: true })
  assert.ok(privateRequests.length > 0)
  for (const r of privateRequests) assert.equal(r.authorization, `Bearer ${token}`, `${r.method} ${r.url}`)
  // The set's files need the token too (no public_files), as the panel says.
  assert.equal((await fetch(href, { signal: AbortSignal.timeout(WAIT) })).status, 401)
  const res = await fetch(href, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(WAIT) })
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), body)

  // Nowhere but in memory.
  const stored = await page.evaluate(() =>
    [localStorage, sessionStorage].flatMap((s) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`)).join('\n'),
  )
  assert.ok(!stored.includes(token), 'the token is in web storage')
  assert.ok(!(await context.cookies()).some((c) => c.value.includes(token)), 'the token is in a cookie')

  // Forgotten on request, and by a reload.
  await page.getByRole('button', { name: 'Forget token' }).click()
  await page.locator('#token-form').waitFor({ state: 'visible' })
  await poll('the Dashboard to be disabled', WAIT, async () =>
    (await page.locator('.uppy-Dashboard').getAttribute('aria-disabled')) === 'true' ? true : null,
  )
  await input.fill(token)
  await input.press('Enter')
  await page.locator('#token-using').waitFor({ state: 'visible' })
  await page.reload()
  await page.locator('#set:not([disabled])').waitFor()
  assert.equal(await select.inputValue(), 'private')
  await page.locator('#token-form').waitFor({ state: 'visible' })
  assert.match(await page.locator('#policy').innerText(), /Needs an upload token from your app/)
  await select.selectOption('files')
})

test('a server whose every set needs a token says so instead of showing an empty uploader', { timeout: 60_000 }, async () => {
  const dir = path.join(tmp, 'all-token')
  await mkdir(dir)
  const config = path.join(dir, 'config.hcl')
  await writeFile(
    config,
    `listen = "127.0.0.1:0"
data_dir = "${path.join(dir, 'data')}"
uploads_default_dest = "${path.join(dir, 'uploads')}"

set "private" {
  extensions = all
  auth {
    secret_file = "${path.join(tmp, 'jwt.key')}"
  }
}
`,
  )
  const other = await startServer(BIN, config)
  const p = await context.newPage()
  const uploads = []
  p.on('request', (req) => {
    if (new URL(req.url()).pathname.includes('/uploads/')) uploads.push(`${req.method()} ${req.url()}`)
  })
  p.on('pageerror', (err) => pageProblems.push(`uncaught: ${err.message}`))
  try {
    await p.goto(`${other.url}/`)
    await p.locator('#token').waitFor({ state: 'visible' })
    assert.match(await p.locator('#token-intro').innerText(), /^Every set on this server needs an upload token from your app/)
    assert.ok(await p.locator('#dashboard').isHidden(), 'an uploader that cannot upload is shown')
    assert.match(await p.locator('#token-snippet').innerText(), new RegExp(`endpoint: '${other.url}/uploads/private/'`))
    assert.deepEqual(await p.getByLabel('Upload set').locator('option').allTextContents(), ['private — needs a token'])
    await p.screenshot({ path: path.join(artifacts, 'page-all-token.png'), fullPage: true })
    await p.setViewportSize({ width: 375, height: 812 })
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 375px screen`)
    await p.screenshot({ path: path.join(artifacts, 'page-all-token-375.png'), fullPage: true })
  } finally {
    await p.close()
    await other.stop()
  }
  assert.deepEqual(uploads, [])
})

test('an uploaded file shows its final name as a working link', { timeout: 90_000 }, async () => {
  await page.getByLabel('Upload set').selectOption('photos')
  const png = makePNG(48, 32)
  await addFiles([{ name: 'pixel.png', mimeType: 'image/png', buffer: png }])
  const { name, href } = await placed('pixel.png')
  assert.equal(name, 'pixel.png')
  assert.ok(href.startsWith(`${server.url}/files/photos/`), href)
  assert.deepEqual(await download(href), png)
})

test('the same name uploaded twice gets two names', { timeout: 90_000 }, async () => {
  await page.getByLabel('Upload set').selectOption('files')
  const first = Buffer.from('first version\n')
  const second = Buffer.from('second, longer version\n')
  await addFiles([{ name: 'notes.txt', mimeType: 'text/plain', buffer: first }])
  const a = await placed('notes.txt', 0)
  await addFiles([{ name: 'notes.txt', mimeType: 'text/plain', buffer: second }])
  const b = await placed('notes.txt', 0) // the newest row is on top
  assert.notEqual(a.name, b.name)
  assert.notEqual(a.href, b.href)
  assert.deepEqual(await download(a.href), first)
  assert.deepEqual(await download(b.href), second)

  // Several files at once.
  const many = ['one.txt', 'two.txt', 'three.txt'].map((name) => ({
    name,
    mimeType: 'text/plain',
    buffer: Buffer.from(`this is ${name}\n`),
  }))
  await addFiles(many)
  for (const f of many) {
    const { name, href } = await placed(f.name)
    assert.equal(name, f.name)
    assert.deepEqual(await download(href), f.buffer)
  }
})

test('an upload interrupted by a reload resumes where the server stopped', { timeout: 180_000 }, async (t) => {
  const size = 16 * MiB
  const data = randomBytes(size)
  const file = path.join(tmp, 'big.bin')
  await writeFile(file, data) // a real file, so its identity survives the reload
  const before = await bytesReceived('files')

  // Slow the upload down enough to reload in the middle of it.
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await throttle(cdp, 2 * MiB)

  await page.getByLabel('Upload set').selectOption('files')
  await addFiles(file)
  const uploadURL = await poll('the upload to be created', WAIT, () =>
    page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i)
        if (!key.startsWith('tus::')) continue
        const entry = JSON.parse(localStorage.getItem(key))
        if (entry.metadata?.filename === 'big.bin' && entry.uploadUrl) return entry.uploadUrl
      }
      return null
    }),
  )
  const id = uploadURL.split('/').filter(Boolean).pop()
  const stateURL = `${server.url}/api/uploads/files/${id}`
  const offsetAtReload = await poll('the server to hold a quarter of the file', 60_000, async () => {
    const state = await (await fetch(stateURL)).json()
    assert.notEqual(state.state, 'complete', 'the upload finished before the reload: throttling did not work')
    return state.offset >= size / 4 ? state.offset : null
  })

  // What a person sees mid-way: bytes and speed per file.
  const moving = row('big.bin').first()
  await poll('bytes and speed on the row', WAIT, async () => /of 16 MiB · .+\/s/.test(await moving.innerText()) || null)
  await page.screenshot({ path: path.join(artifacts, 'page-uploading.png') })

  await page.reload()
  await throttle(cdp, -1)
  await page.locator('#set:not([disabled])').waitFor()
  assert.equal(await page.getByLabel('Upload set').inputValue(), 'files', 'the chosen set is remembered')
  // The page lists what was left unfinished, with what the server already has.
  const pending = page.locator('#pending-list li').filter({ hasText: 'big.bin' })
  await pending.waitFor()
  assert.match(await pending.innerText(), /of 16 MiB received/)
  await page.screenshot({ path: path.join(artifacts, 'page-unfinished.png') })

  await addFiles(file) // the same file again: it continues
  const { href } = await placed('big.bin')
  await pending.waitFor({ state: 'detached' })
  await cdp.detach()

  const sent = (await bytesReceived('files')) - before
  t.diagnostic(`file ${size} bytes; server had ${offsetAtReload} at the reload; received ${sent} in all`)
  assert.ok(sent < 2 * size, `the server received ${sent} bytes for a ${size}-byte file`)
  // A restart would have sent the first offsetAtReload bytes twice.
  assert.ok(sent < size + offsetAtReload, `the server received ${sent} bytes; the part it had (${offsetAtReload}) was sent again`)
  const state = await (await fetch(stateURL)).json()
  assert.equal(state.state, 'complete', 'the upload begun before the reload is the one that finished')
  assert.equal(sha256(await download(href)), sha256(data))
})

test('a lost completing response still shows where the file went', { timeout: 90_000 }, async () => {
  // The last PATCH reaches the server, but its answer (with Upload-File-Name)
  // never reaches the page: the upload is found complete on retry, and the
  // page learns where the file went from the retry's HEAD (which carries
  // Upload-File-Name once placed) or, failing that, from /api/uploads.
  let lost = false
  const pattern = `${server.url}/uploads/files/**`
  await page.route(pattern, async (route) => {
    if (route.request().method() === 'PATCH' && !lost) {
      lost = true
      await route.fetch()
      await route.abort('connectionreset')
    } else {
      await route.continue()
    }
  })
  const asked = []
  const onRequest = (req) => {
    if (req.url().startsWith(`${server.url}/api/uploads/files/`)) asked.push(req.url())
  }
  page.on('request', onRequest)
  try {
    await page.getByLabel('Upload set').selectOption('files')
    const body = Buffer.from('the answer to this one is lost\n')
    await addFiles([{ name: 'lost.txt', mimeType: 'text/plain', buffer: body }])
    const { name, href } = await placed('lost.txt')
    assert.ok(lost, 'no PATCH was intercepted')
    assert.ok(asked.length <= 1, 'the page asked /api/uploads at most once')
    assert.equal(name, 'lost.txt')
    assert.deepEqual(await download(href), body)
  } finally {
    page.off('request', onRequest)
    await page.unroute(pattern)
  }
})

test('a refusal by the server shows its reason, with no Retry and no "Uploading"', { timeout: 90_000 }, async () => {
  // Refused after the last byte: the content is not what the extension claims
  // (422 ERR_CONTENT_MISMATCH). Asking again cannot change that answer.
  const fake = Buffer.from('this is text, not a PNG image\n')
  const mismatch = await refusalFromServer('photos', 'fake-probe.png', fake, true)
  assert.equal(mismatch.status, 422)
  assert.match(mismatch.body, /^ERR_CONTENT_MISMATCH: /)
  await page.getByLabel('Upload set').selectOption('photos')
  await addFiles([{ name: 'fake.png', mimeType: 'image/png', buffer: fake }])
  const reason = await refused('fake.png')
  assert.equal(reason, humanize(mismatch.body).replaceAll('fake-probe.png', 'fake.png'))
  assert.doesNotMatch(reason, /^ERR_/)
  assert.match(await notice('fake.png'), /Failed to upload fake\.png/)

  // What a person sees: no Retry anywhere (status bar or file card), and the
  // header no longer counts the refused file as uploading.
  await closeAddPanel()
  await poll('the header to stop saying "Uploading"', WAIT, async () =>
    /Uploading/.test(await dashboardTitle()) ? null : true,
  )
  assert.equal(await page.getByRole('button', { name: /retry/i }).count(), 0, 'a Retry button is offered for a refusal')
  assert.equal(await page.locator('.uppy-Dashboard').getByText('Retry', { exact: true }).count(), 0)
  assert.ok(!(await page.locator('#set').isDisabled()), 'the refused file still holds the set picker')

  // A refused upload is forgotten: adding the file again starts afresh.
  await poll('the refused upload to be forgotten', WAIT, () =>
    page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i)
        if (key.startsWith('tus::') && JSON.parse(localStorage.getItem(key)).metadata?.filename === 'fake.png') return null
      }
      return true
    }),
  )
})

test('a 5xx answer is retried, not taken for a refusal', { timeout: 90_000 }, async () => {
  let failed = 0
  const pattern = `${server.url}/uploads/files/`
  await page.route(pattern, async (route) => {
    if (route.request().method() === 'POST' && failed === 0) {
      failed++
      await route.fulfill({ status: 503, body: 'ERR_STORAGE_FULL: the server has no space left to store this upload; retry later' })
    } else {
      await route.continue()
    }
  })
  try {
    await page.getByLabel('Upload set').selectOption('files')
    const body = Buffer.from('sent again after a 503\n')
    await addFiles([{ name: 'retried.txt', mimeType: 'text/plain', buffer: body }])
    const { href } = await placed('retried.txt')
    assert.equal(failed, 1, 'no POST was answered with 503')
    assert.deepEqual(await download(href), body)
  } finally {
    await page.unroute(pattern)
  }
})

test('files the set would refuse are refused before sending, in the server\'s words', { timeout: 90_000 }, async () => {
  // The server's own answers, asked directly: the page must say the same.
  const notesExe = await refusalFromServer('notes', 'setup.exe', Buffer.from('MZ not really'), false)
  assert.equal(notesExe.status, 415)
  const photosExe = await refusalFromServer('photos', 'tool.exe', Buffer.from('MZ'), false)
  assert.equal(photosExe.status, 415)
  const big = Buffer.alloc(3 * MiB + 1) // the server checks Upload-Length; no body is sent here
  const tooBig = await refusalFromServer('photos', 'huge.png', big, false)
  assert.equal(tooBig.status, 413)
  assert.match(tooBig.body, /^ERR_UPLOAD_TOO_LARGE: .*2 MiB.*3 MiB \(3145729 bytes\)/)

  const notesRequests = countUploadRequests('notes')
  const photosRequests = countUploadRequests('photos')
  try {
    // "Anything except .exe": Uppy's restrictions have no such form, so the page
    // refuses it itself (onBeforeFileAdded).
    await page.getByLabel('Upload set').selectOption('notes')
    await acceptOf((a) => a === null) // an "any except" set has no accept= form
    await addFiles([{ name: 'setup.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ not really') }])
    assert.equal(await refused('setup.exe'), humanize(notesExe.body))
    assert.equal(await notice(humanize(notesExe.body)), humanize(notesExe.body))

    // A list of extensions: the picker's accept, and the same words.
    await page.getByLabel('Upload set').selectOption('photos')
    const accept = await acceptOf((a) => a?.split(/,\s*/).includes('.png'))
    assert.ok(!accept.includes('.exe'), `accept=${accept}`)
    await addFiles([{ name: 'tool.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ') }])
    assert.equal(await refused('tool.exe'), humanize(photosExe.body))

    // Over max_size: the server's sentence, with its units.
    await addFiles([{ name: 'huge.png', mimeType: 'image/png', buffer: big }])
    assert.equal(await refused('huge.png'), humanize(tooBig.body))
    assert.equal(await notice(humanize(tooBig.body)), humanize(tooBig.body))
  } finally {
    notesRequests.stop()
    photosRequests.stop()
  }
  assert.deepEqual(notesRequests.seen, [], 'the page sent a refused file to the server')
  assert.deepEqual(photosRequests.seen, [], 'the page sent a refused file to the server')
  await closeAddPanel()
})

test('sizes and rules read the same everywhere, in the server\'s binary units', { timeout: 90_000 }, async () => {
  const select = page.getByLabel('Upload set')
  const notes = {
    photos: 'Set “photos”: .bmp, .gif, .jpe, .jpeg, .jpg, .png, .svg, .webp, up to 2 MiB each',
    files: 'Set “files”: any file, up to 64 MiB each',
    notes: 'Set “notes”: any file except .exe, up to 1 MiB each',
  }
  for (const [set, note] of Object.entries(notes)) {
    await select.selectOption(set)
    await closeAddPanel()
    // The note shows where files are dropped: with files in the list, that is
    // the "add more" panel.
    await fileInput()
    const shown = page.locator('.uppy-Dashboard-note').first()
    await poll(`the note of ${set}`, WAIT, async () => ((await shown.innerText()).trim() === note ? true : null)).catch(
      async () => assert.equal((await shown.innerText()).trim(), note),
    )
    const accepts = (await page.locator('#policy dd').first().innerText()).trim()
    assert.ok(note.toLowerCase().includes(accepts.toLowerCase()), `note "${note}" vs policy box "${accepts}"`)
    await closeAddPanel()
  }

  // A file card, the status bar and the list while it moves: MiB, never MB.
  await select.selectOption('files')
  const size = 3.5 * MiB
  const file = path.join(tmp, 'three-and-a-half.bin')
  await writeFile(file, randomBytes(size))
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await throttle(cdp, 1 * MiB)
  try {
    await addFiles(file)
    await closeAddPanel()
    const card = page.locator('.uppy-Dashboard-Item').filter({ hasText: 'three-and-a-half.bin' })
    await poll('the status bar to show bytes', WAIT, async () =>
      /iB of [\d.]+ MiB/.test(await page.locator('.uppy-StatusBar').innerText().catch(() => '')) ? true : null,
    )
    assert.equal((await card.locator('.uppy-Dashboard-Item-statusSize').innerText()).trim(), '3.5 MiB')
    const text = await page.locator('body').innerText()
    assert.doesNotMatch(text, /\d\s?[KMGT]B\b/, 'a decimal unit on the page')
    await page.screenshot({ path: path.join(artifacts, 'page-units.png') })
  } finally {
    await throttle(cdp, -1)
    await cdp.detach()
  }
  await placed('three-and-a-half.bin')
  assert.doesNotMatch(await page.locator('body').innerText(), /\d\s?[KMGT]B\b/, 'a decimal unit on the page')
})

test('the same file added again continues, and the set stays while it moves', { timeout: 120_000 }, async () => {
  const select = page.getByLabel('Upload set')
  await select.selectOption('files')
  const data = randomBytes(4 * MiB)
  const file = path.join(tmp, 'again.bin')
  await writeFile(file, data) // a real file: the same name, size and date each time
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await throttle(cdp, 1 * MiB)
  try {
    await addFiles(file)
    const moving = row('again.bin')
    await poll('the upload to move', WAIT, async () => ((await moving.first().getAttribute('data-state')) === 'uploading' ? true : null))

    // While it moves, the set cannot be changed, and the page says why.
    assert.ok(await select.isDisabled(), 'the set picker is enabled during an upload')
    assert.match(await page.locator('#set-busy').innerText(), /Uploads to “files” are on their way/)
    await page.screenshot({ path: path.join(artifacts, 'page-busy.png'), fullPage: true })

    // Added again while it moves: no "duplicate" refusal, no second upload.
    await addFiles(file)
    assert.equal(await notice('again.bin'), 'again.bin is already in the list: it continues from where it stopped')
    await closeAddPanel()
    assert.equal(await moving.count(), 1)
    assert.notEqual(await moving.first().getAttribute('data-state'), 'refused', await moving.first().innerText())

    // Paused, then added again: it resumes.
    await page.locator('.uppy-Dashboard-Item').filter({ hasText: 'again.bin' }).getByRole('button', { name: 'Pause upload' }).click()
    await poll('the row to say paused', WAIT, async () => ((await moving.first().getAttribute('data-state')) === 'paused' ? true : null))
    await addFiles(file)
    await poll('the row to move again', WAIT, async () => ((await moving.first().getAttribute('data-state')) === 'uploading' ? true : null))
    await closeAddPanel()
    assert.equal(await moving.count(), 1)
  } finally {
    await throttle(cdp, -1)
    await cdp.detach()
  }
  const first = await placed('again.bin')
  assert.equal(first.name, 'again.bin')
  await poll('the set picker to be enabled again', WAIT, async () => ((await select.isDisabled()) ? null : true))
  assert.ok(await page.locator('#set-busy').isHidden())

  // Added again once finished: a new upload, named by the set's rule; the first
  // row keeps its outcome.
  await addFiles(file)
  await poll('a second row', UPLOAD_WAIT, async () => ((await row('again.bin').count()) === 2 ? true : null))
  const second = await placed('again.bin', 0)
  assert.equal(second.name, 'again_1.bin')
  assert.equal((await placed('again.bin', 1)).name, 'again.bin')
  assert.deepEqual(await download(second.href), data)
})

test('a server that stops answering shows "reconnecting" until it is back', { timeout: 120_000 }, async (t) => {
  await page.getByLabel('Upload set').selectOption('files')
  const size = 6 * MiB
  const data = randomBytes(size)
  const file = path.join(tmp, 'crash.bin')
  await writeFile(file, data)
  const banner = page.locator('#connection')
  assert.ok(await banner.isHidden())

  const port = new URL(server.url).port
  let down = false
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await throttle(cdp, 1 * MiB)
  try {
    await addFiles(file)
    const stateURL = await poll('the upload to be created', WAIT, () =>
      page.evaluate(() => {
        for (let i = 0; i < localStorage.length; i++) {
          const key = localStorage.key(i)
          if (!key.startsWith('tus::')) continue
          const entry = JSON.parse(localStorage.getItem(key))
          if (entry.metadata?.filename === 'crash.bin' && entry.uploadUrl) return entry.uploadUrl
        }
        return null
      }),
    ).then((u) => `${server.url}/api/uploads/files/${u.split('/').filter(Boolean).pop()}`)
    const offsetAtCrash = await poll('the server to hold a part of the file', WAIT, async () => {
      const state = await (await fetch(stateURL)).json()
      return state.offset >= MiB ? state.offset : null
    })

    // The server crashes: nothing answers on its port.
    down = true
    await server.kill()
    await banner.waitFor({ state: 'visible' })
    assert.match(await banner.innerText(), /Reconnecting/)
    await page.screenshot({ path: path.join(artifacts, 'page-reconnecting.png'), fullPage: true })
    await page.setViewportSize({ width: 375, height: 812 })
    await page.screenshot({ path: path.join(artifacts, 'page-reconnecting-375.png'), fullPage: true })
    await page.setViewportSize({ width: 1280, height: 900 })
    // It stays while the server is away (the probe fails every second).
    await page.waitForTimeout(1500)
    assert.ok(await banner.isVisible(), 'the banner went away while the server was still down')

    // Back on the same port, with the same directories: the banner goes, and the
    // upload continues where the server stopped.
    server = await serve(`127.0.0.1:${port}`)
    down = false
    const state = await (await fetch(stateURL)).json()
    t.diagnostic(`offset ${offsetAtCrash} before the crash, ${state.offset} after the restart`)
    await banner.waitFor({ state: 'hidden' })
  } finally {
    if (down) server = await serve(`127.0.0.1:${port}`) // for the tests after this one
    await throttle(cdp, -1)
    await cdp.detach()
  }
  const { href } = await placed('crash.bin')
  assert.equal(sha256(await download(href)), sha256(data))
  const received = await bytesReceived('files') // counted since the restart
  t.diagnostic(`after the restart the server received ${received} of ${size} bytes`)
  assert.ok(received < size, 'the upload started over after the restart instead of resuming')
})

test('error notices leave the file cards visible at phone width', { timeout: 90_000 }, async () => {
  await page.setViewportSize({ width: 375, height: 812 })
  try {
    await page.getByLabel('Upload set').selectOption('photos')
    // Enough cards to fill the Dashboard's list, and one the server refuses.
    const files = ['a', 'b', 'c', 'd', 'e'].map((n, i) => ({ name: `card-${n}.png`, mimeType: 'image/png', buffer: makePNG(8 + i, 8) }))
    files.push({ name: 'card-fake.png', mimeType: 'image/png', buffer: Buffer.from('not a PNG at all\n') })
    await addFiles(files)
    await closeAddPanel()
    const toast = page.locator('.uppy-Informer p').filter({ hasText: 'card-fake.png' }).first()
    await toast.waitFor({ state: 'visible', timeout: UPLOAD_WAIT })
    await page.waitForTimeout(350) // the notice's slide-in
    const overlap = await page.evaluate(() => {
      const p = [...document.querySelectorAll('.uppy-Informer p')].find((el) => el.offsetParent !== null)
      const list = document.querySelector('.uppy-Dashboard-files')?.getBoundingClientRect()
      if (!p || !list) return 'no notice or no list'
      const t = p.getBoundingClientRect()
      const hits = []
      for (const card of document.querySelectorAll('.uppy-Dashboard-Item')) {
        const c = card.getBoundingClientRect()
        // The part of the card the list shows (the rest is scrolled away).
        const top = Math.max(c.top, list.top)
        const bottom = Math.min(c.bottom, list.bottom)
        if (bottom <= top) continue
        if (t.left < c.right && c.left < t.right && t.top < bottom && top < t.bottom) hits.push(card.textContent.slice(0, 40))
      }
      return hits
    })
    await page.screenshot({ path: path.join(artifacts, 'page-375-notice.png') })
    assert.deepEqual(overlap, [], 'the notice covers file cards')
    for (const f of files.slice(0, -1)) await placed(f.name)
    assert.ok(await refused('card-fake.png'))
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 })
  }
})

test('screenshots, wide and at phone width', { timeout: 60_000 }, async () => {
  // Back from "add more" to the list of files, once Uppy's notices have faded.
  await closeAddPanel()
  await page.locator('.uppy-Informer p').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {})
  await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true })
  await page.setViewportSize({ width: 375, height: 812 })
  await page.waitForTimeout(300) // let the Dashboard measure its new width
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 375px screen`)
  await page.screenshot({ path: path.join(artifacts, 'page-375.png'), fullPage: true })
  await page.setViewportSize({ width: 1280, height: 900 })
})

test('the page broke no rule of its Content-Security-Policy and stayed on its origin', () => {
  assert.deepEqual(pageProblems, [])
})

// ---------------------------------------------------------------------------

// serve starts the server listening on listen ("host:port") with the run's config.
async function serve(listen) {
  const config = path.join(tmp, 'config.hcl')
  await writeFile(config, `listen = "${listen}"\n${configText}`)
  return startServer(BIN, config)
}

// addFiles gives files to the Dashboard as its file picker would. The "add
// more" panel stays open after a file was refused there.
async function addFiles(files) {
  await (await fileInput()).setInputFiles(files)
}

// fileInput opens the place where files are added (the "add more" panel once
// the list has files) and returns its file input.
async function fileInput() {
  const panel = page.locator('.uppy-Dashboard-AddFilesPanel')
  const addMore = page.getByRole('button', { name: 'Add more files' })
  if (!(await panel.isVisible()) && (await addMore.isVisible())) {
    await addMore.click()
    await panel.waitFor({ state: 'visible' })
  }
  return page.locator('input.uppy-Dashboard-input[type=file]:not([webkitdirectory])').first()
}

// closeAddPanel goes back from "add more" to the list of files. The panel also
// closes by itself once files were added, so Back may be gone by the click.
async function closeAddPanel() {
  const back = page.getByRole('button', { name: 'Back', exact: true })
  if (await back.isVisible()) await back.click({ timeout: 2000 }).catch(() => {})
  await page.locator('.uppy-Dashboard-AddFilesPanel').waitFor({ state: 'detached' })
}

// acceptOf waits for the Dashboard to show the current set's rules (it renders
// after the set changes) and returns the file input's accept.
async function acceptOf(want) {
  const input = await fileInput()
  return poll(`accept= to be ${want}`, WAIT, async () => {
    const accept = await input.getAttribute('accept')
    return want(accept) ? accept ?? '' : null
  })
}

// dashboardTitle is the Dashboard's header ("Uploading 1 file", "Upload complete").
async function dashboardTitle() {
  const title = page.locator('.uppy-DashboardContent-title')
  return (await title.count()) ? (await title.innerText()).trim() : ''
}

// notice waits for Uppy's notice (its Informer) to say something and returns it.
async function notice(pattern) {
  const p = page.locator('.uppy-Informer p').filter({ hasText: pattern }).first()
  await p.waitFor({ state: 'visible' })
  return (await p.innerText()).trim()
}

// countUploadRequests records the tus requests the page makes to a set's endpoint.
function countUploadRequests(set) {
  const seen = []
  const onRequest = (req) => {
    if (req.url().startsWith(`${server.url}/uploads/${set}/`)) seen.push(`${req.method()} ${req.url()}`)
  }
  page.on('request', onRequest)
  return { seen, stop: () => page.off('request', onRequest) }
}

function row(name) {
  return page.locator('#upload-list li').filter({ has: page.locator('.upload-name', { hasText: name }) })
}

// placed waits for the nth row of a file (newest first) to be placed and
// returns the name and URL it shows; a refusal fails with its reason.
async function placed(name, nth = 0) {
  const r = row(name).nth(nth)
  await r.and(page.locator('[data-state="placed"], [data-state="refused"]')).waitFor({ timeout: UPLOAD_WAIT })
  const status = await r.locator('.upload-status').innerText()
  assert.equal(await r.getAttribute('data-state'), 'placed', `${name}: ${status}`)
  const link = r.getByRole('link')
  return { name: await link.innerText(), href: await link.getAttribute('href') }
}

async function refused(name) {
  const r = row(name).first()
  await r.and(page.locator('[data-state="placed"], [data-state="refused"]')).waitFor({ timeout: UPLOAD_WAIT })
  assert.equal(await r.getAttribute('data-state'), 'refused', `${name} was not refused`)
  return (await r.locator('.upload-status').innerText()).trim()
}

// refusalFromServer asks the tus endpoint directly, to learn the exact words the
// page must show.
async function refusalFromServer(set, filename, body, withBody) {
  const headers = {
    'Tus-Resumable': '1.0.0',
    'Upload-Length': String(body.length),
    'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
  }
  if (withBody) headers['Content-Type'] = 'application/offset+octet-stream'
  const res = await fetch(`${server.url}/uploads/${set}/`, {
    method: 'POST',
    headers,
    body: withBody ? body : undefined,
    signal: AbortSignal.timeout(WAIT),
  })
  return { status: res.status, body: await res.text() }
}

// The page's rendering of a refusal body: the code dropped, a capital first.
function humanize(body) {
  const s = body.trim().replace(/^ERR_[A-Z0-9_]+:\s*/, '')
  return s.charAt(0).toUpperCase() + s.slice(1)
}

async function download(href) {
  const res = await fetch(href, { signal: AbortSignal.timeout(WAIT) })
  assert.equal(res.status, 200, `GET ${href}`)
  return Buffer.from(await res.arrayBuffer())
}

// bytesReceived reads uploadsets_bytes_received_total{set=...} from /metrics.
async function bytesReceived(set) {
  const text = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(WAIT) })).text()
  for (const line of text.split('\n')) {
    const m = line.match(/^uploadsets_bytes_received_total\{([^}]*)\}\s+(\S+)/)
    if (m && m[1].split(',').includes(`set="${set}"`)) return Number(m[2])
  }
  return 0
}

async function throttle(cdp, bytesPerSecond) {
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond,
  })
}

// poll calls fn until it returns something other than null, for at most ms.
async function poll(what, ms, fn) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v != null) return v
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex')
}

// makePNG draws a small gradient, so the server's content check sees a real PNG.
function makePNG(width, height) {
  const raw = Buffer.alloc((width * 3 + 1) * height)
  for (let y = 0; y < height; y++) {
    const o = y * (width * 3 + 1)
    for (let x = 0; x < width; x++) {
      raw[o + 1 + x * 3] = (x * 255) / width
      raw[o + 2 + x * 3] = (y * 255) / height
      raw[o + 3 + x * 3] = 160
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const td = Buffer.concat([Buffer.from(type), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(td))
    return Buffer.concat([len, td, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

function crc32(buf) {
  let c = ~0
  for (const b of buf) {
    c ^= b
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1))
  }
  return ~c >>> 0
}

// startServer runs `uploadsets serve` and resolves once it logs its URL.
function startServer(bin, config) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['serve', '-config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    let settled = false
    const timer = setTimeout(() => fail(new Error(`the server logged no url= within ${WAIT} ms:\n${log}`)), WAIT)
    const fail = (err) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    const onData = (chunk) => {
      log += chunk
      const m = log.match(/url=(http:\/\/[^\s"',]+)/)
      if (m && !settled) {
        settled = true
        clearTimeout(timer)
        resolve({ url: m[1].replace(/\/$/, ''), stop, kill, log: () => log })
      }
    }
    child.stdout.setEncoding('utf8').on('data', onData)
    child.stderr.setEncoding('utf8').on('data', onData)
    child.on('error', fail)
    child.on('exit', (code) => fail(new Error(`the server exited (${code}) before serving:\n${log}`)))

    const exited = new Promise((r) => child.once('exit', r))
    async function stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    // kill is a crash: no response to anything in flight, the port closed at once.
    async function kill() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
    }
  })
}
