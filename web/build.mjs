// Builds the page into dist/, which is committed and embedded by web.go, so
// that `go build` needs no Node.
//
//   npm ci && node build.mjs           rebuild dist/ from the lockfile
//   npm ci && node build.mjs --check   exit 1 if the committed dist/ differs
//                                      from a fresh build
//
// The output is a pure function of src/ and node_modules (pinned by
// package-lock.json): content-hashed names, no timestamps, no absolute paths.
//
//   dist/index.html                    src/index.html with the asset names filled in
//   dist/assets/app-HASH.js            src/app.js and Uppy, minified
//   dist/assets/app-HASH.css           src/app.css and Uppy's styles
//   dist/assets/licenses-HASH.txt      the licence of every bundled package

import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const root = path.dirname(fileURLToPath(import.meta.url))
const check = process.argv.includes('--check')

const files = await build()
if (check) {
  process.exit((await compare(files, path.join(root, 'dist'))) ? 0 : 1)
}
await rm(path.join(root, 'dist'), { recursive: true, force: true })
for (const [rel, body] of files) {
  const out = path.join(root, 'dist', rel)
  await mkdir(path.dirname(out), { recursive: true })
  await writeFile(out, body)
}
for (const [rel, body] of files) console.log(`dist/${rel}  ${body.length} bytes`)

// build returns the files of dist/ as a sorted Map of relative path -> Buffer.
async function build() {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src/app.js', 'src/app.css'],
    entryNames: '[name]-[hash]',
    outdir: 'out', // not written: write is false
    write: false,
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022', 'chrome109', 'firefox115', 'safari15.4'],
    define: { 'process.env.NODE_ENV': '"production"' },
    // Uppy formats sizes with prettier-bytes, which divides by 1024 but says
    // "MB"; the page's formatter says MiB, like the server's limits.
    alias: { '@transloadit/prettier-bytes': './src/bytes.js' },
    legalComments: 'none', // collected into licenses-HASH.txt instead
    charset: 'utf8',
    metafile: true,
    logLevel: 'warning',
  })

  const files = new Map()
  const names = {}
  for (const out of result.outputFiles) {
    const name = path.basename(out.path)
    files.set(`assets/${name}`, Buffer.from(out.contents))
    names[name.replace(/-[A-Z0-9]+(\.\w+)$/, '$1')] = name
  }

  const licenses = Buffer.from(await licenseText(result.metafile))
  const licensesName = `licenses-${shortHash(licenses)}.txt`
  files.set(`assets/${licensesName}`, licenses)
  names['licenses.txt'] = licensesName

  let html = await readFile(path.join(root, 'src/index.html'), 'utf8')
  html = html.replace(/\{\{([\w.]+)\}\}/g, (whole, key) => {
    if (!names[key]) throw new Error(`src/index.html: no asset for ${whole}`)
    return names[key]
  })
  files.set('index.html', Buffer.from(html))

  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

// licenseText lists every package that ended up in the bundle, with its licence.
async function licenseText(metafile) {
  const packages = new Set()
  for (const input of Object.keys(metafile.inputs)) {
    const m = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//)
    if (m) packages.add(m[1])
  }
  const parts = [
    'Third-party software bundled into the uploadsets web page (dist/assets/app-*.js, app-*.css).\n',
  ]
  for (const dir of [...packages].sort()) {
    const pkg = JSON.parse(await readFile(path.join(root, dir, 'package.json'), 'utf8'))
    const entries = await readdir(path.join(root, dir))
    const licenseFile = entries.filter((f) => /^licen[cs]e/i.test(f)).sort()[0]
    const text = licenseFile
      ? (await readFile(path.join(root, dir, licenseFile), 'utf8')).trim()
      : `License: ${pkg.license ?? 'unknown'} (the package ships no licence file)`
    parts.push(`${'='.repeat(78)}\n${pkg.name} ${pkg.version} (${pkg.license ?? 'unknown'})\n${'='.repeat(78)}\n${text}\n`)
  }
  return parts.join('\n')
}

function shortHash(buf) {
  return createHash('sha256').update(buf).digest('hex').slice(0, 8).toUpperCase()
}

// compare reports how dir differs from files; true when identical.
async function compare(files, dir) {
  const committed = new Map()
  const walk = async (rel) => {
    let entries
    try {
      entries = await readdir(path.join(dir, rel), { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) await walk(r)
      else committed.set(r, await readFile(path.join(dir, r)))
    }
  }
  await walk('')

  const problems = []
  for (const [rel, body] of files) {
    const have = committed.get(rel)
    if (!have) problems.push(`missing from dist/: ${rel}`)
    else if (!have.equals(body)) problems.push(`differs from a fresh build: dist/${rel}`)
  }
  for (const rel of committed.keys()) {
    if (!files.has(rel)) problems.push(`not produced by a fresh build: dist/${rel}`)
  }
  if (problems.length === 0) {
    console.log(`dist/ is up to date (${files.size} files)`)
    return true
  }
  console.error(problems.join('\n'))
  console.error('dist/ is stale: run `npm ci && node build.mjs` in web/ and commit dist/.')
  return false
}
