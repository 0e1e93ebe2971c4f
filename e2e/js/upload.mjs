// Uploads one file with tus-js-client, as a browser or Node app would, and prints the
// outcome as one JSON line. Options come as one JSON argument:
//   {"endpoint", "file", "name", "type", "chunkSize", "retryDelays", "resumeFrom", "protocol", "headers"}
import { readFileSync } from 'node:fs'
import * as tus from 'tus-js-client'

const opts = JSON.parse(process.argv[2])
const data = readFileSync(opts.file)
const result = { ok: false, progress: 0, requests: 0 }

const upload = new tus.Upload(data, {
  endpoint: opts.endpoint,
  uploadUrl: opts.resumeFrom || null,
  chunkSize: opts.chunkSize || Infinity,
  retryDelays: opts.retryDelays || [0, 100, 300, 1000],
  metadata: { filename: opts.name, filetype: opts.type || 'application/octet-stream' },
  storeFingerprintForResuming: false,
  protocol: opts.protocol || 'tus-v1',
  headers: opts.headers || {},
  onAfterResponse (req, res) {
    result.requests++
    const name = res.getHeader('Upload-File-Name')
    if (name) {
      result.fileName = decodeURIComponent(name)
      result.fileUrl = res.getHeader('Upload-File-Url')
    }
  },
  onProgress (sent) { result.progress = sent },
  onSuccess () {
    result.ok = true
    result.url = upload.url
    finish()
  },
  onError (err) {
    result.error = String(err.message || err)
    if (err.originalResponse) {
      result.status = err.originalResponse.getStatus()
      result.body = err.originalResponse.getBody()
    }
    result.url = upload.url
    finish()
  }
})

function finish () {
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}

setTimeout(() => { result.error = 'timed out'; finish() }, opts.timeoutMs || 60000)
upload.start()
