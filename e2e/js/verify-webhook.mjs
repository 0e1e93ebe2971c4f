// Verifies one notification the way an app would, with the Standard Webhooks reference
// library for JavaScript, so that the server's signatures are checked by code it does not
// share. Reads {"secret": "whsec_...", "headers": {...}, "body": "..."} on stdin; exits 0
// if the library accepts the notification, 1 (with its reason on stderr) if not.
import { Webhook } from 'standardwebhooks'

let input = ''
for await (const chunk of process.stdin) input += chunk
try {
  const { secret, headers, body } = JSON.parse(input)
  new Webhook(secret).verify(body, headers)
} catch (err) {
  console.error(`verify-webhook: ${err.message}`)
  process.exit(1)
}
