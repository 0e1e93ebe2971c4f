// Browser test of the upload page, against the real server binary.
//
//   cd web && npm ci && UPLOADSETS_BIN=/path/to/uploadsets node --test test/
//
// Starts `uploadsets serve` on a free port with its own config and directories,
// drives Debian's Chromium (/usr/bin/chromium, never a downloaded browser) with
// playwright-core, and checks what a person sees: the final name as a working
// link, two files of one name kept apart, an upload that survives a reload
// mid-way without sending again what the server already has, and refusals in
// the server's own words. Screenshots go to test/artifacts/ (git-ignored).
// Every wait is bounded.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
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
let server // { url, stop, log }
let context // Playwright persistent context (a fresh profile)
let page
const pageProblems = [] // CSP violations, uncaught errors, requests leaving the origin

before(async () => {
  assert.ok(BIN, 'set UPLOADSETS_BIN to the built server binary (go build -o bin/uploadsets ./cmd/uploadsets)')
  assert.ok(existsSync(BIN), `UPLOADSETS_BIN=${BIN} does not exist`)
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`)

  tmp = await mkdtemp(path.join(tmpdir(), 'uploadsets-page-'))
  const config = path.join(tmp, 'config.hcl')
  await writeFile(
    config,
    `listen = "127.0.0.1:0"
data_dir = "${path.join(tmp, 'data')}"
uploads_default_dest = "${path.join(tmp, 'uploads')}"

set "photos" {
  extensions = images
  max_size   = "2MiB"
}

set "files" {
  extensions = all
  max_size   = "64MiB"
}

# Uppy cannot express "anything except", so the server is the one to refuse here.
set "notes" {
  extensions = all_except(["exe"])
  max_size   = "1MiB"
}
`,
  )
  server = await startServer(BIN, config)

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
  assert.deepEqual(options, ['photos', 'files', 'notes'])

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

test('refusals show the server\'s reason next to the file', { timeout: 90_000 }, async () => {
  // Refused when the upload is created: "anything except .exe".
  const exe = await refusalFromServer('notes', 'setup.exe', Buffer.from('MZ not really'), false)
  assert.equal(exe.status, 415)
  await page.getByLabel('Upload set').selectOption('notes')
  await addFiles([{ name: 'setup.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ not really') }])
  assert.equal(await refused('setup.exe'), humanize(exe.body))

  // Refused after the last byte: the content is not what the extension claims.
  const fake = Buffer.from('this is text, not a PNG image\n')
  const mismatch = await refusalFromServer('photos', 'fake-probe.png', fake, true)
  assert.equal(mismatch.status, 422)
  await page.getByLabel('Upload set').selectOption('photos')
  await addFiles([{ name: 'fake.png', mimeType: 'image/png', buffer: fake }])
  const reason = await refused('fake.png')
  assert.equal(reason, humanize(mismatch.body).replaceAll('fake-probe.png', 'fake.png'))
  assert.doesNotMatch(reason, /^ERR_/)
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

  // Refused by the page before a byte is sent: the set's own rules.
  await addFiles([{ name: 'tool.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ') }])
  assert.match(await refused('tool.exe'), /\.png/)
})

test('screenshots, wide and at phone width', { timeout: 60_000 }, async () => {
  // Back from "add more" to the list of files, once Uppy's notices have faded.
  const back = page.getByRole('button', { name: 'Back' })
  if (await back.isVisible()) await back.click()
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

// addFiles gives files to the Dashboard as its file picker would.
async function addFiles(files) {
  const addMore = page.getByRole('button', { name: 'Add more files' })
  if (await addMore.isVisible()) await addMore.click()
  await page.locator('input.uppy-Dashboard-input[type=file]').first().setInputFiles(files)
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
        resolve({ url: m[1].replace(/\/$/, ''), stop, log: () => log })
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
  })
}
