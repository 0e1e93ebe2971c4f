# uploadsets configuration. Check it with `uploadsets check -config config.hcl`.
# Relative paths are resolved against the directory of this file.

listen     = "127.0.0.1:8080"        # host:port the server listens on
public_url = "http://127.0.0.1:8080" # base of the URLs handed to clients; "" = the request's Host
data_dir   = "./data"                # partial uploads live here until they complete
max_size   = "1GiB"                  # server-wide cap; B, KB, MB, GB, KiB, MiB, GiB

uploads_default_dest = "./uploads" # a set without destination stores in <this>/<set>
uploads_default_url  = ""          # a set without url is served from <this><set>/, or by uploadsets when ""

expire_after     = "24h" # unfinished uploads are deleted after this long without progress
network_timeout  = "60s" # a request body that sends nothing for this long is cut (its bytes are kept)
shutdown_timeout = "30s" # on SIGTERM, how long in-flight requests get to end
# image_workers  = 2     # image jobs at once, for sets with an image block; default one per core

# Several instances behind one load balancer (README: "Running several instances"):
# data_dir and destinations in S3, locks in Redis, the same config on every instance.
# data_dir             = "s3://uploads/partial/"
# uploads_default_dest = "s3://uploads/files/"
# s3 {
#   endpoint   = "http://127.0.0.1:7070" # omit for AWS; credentials: AWS_ACCESS_KEY_ID...
#   region     = "us-east-1"
#   path_style = true
# }
# redis {
#   url = "redis://127.0.0.1:6379/0"
# }

# Behind a TLS proxy, set public_url to the https URL clients use, or list the proxy
# here so that its X-Forwarded-Host/-Proto are believed (from anyone else they are not).
# trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]

log {
  level  = "info" # trace, debug, info, warn, error
  format = "text" # or "json": one JSON object per line, for a log shipper
}

file_mode = "0644" # placed files (a set may override): readable by a web server serving a set's url
dir_mode  = "0755" # directories the server creates

# Extensions are lists such as ["jpg", "png"] or presets: text, documents, data, images,
# audio, scripts, archives, executables, defaults (text + documents + images + data) and
# all. Combine them with concat(images, ["heic"]); exclude with all_except(executables).

set "photos" {
  extensions = images    # jpg jpe jpeg png gif svg bmp webp
  allow      = ["heic"]  # added to extensions (iPhone photos)
  deny       = ["svg"]   # removed from them: SVG can carry scripts
  max_size   = "16MiB"
  naming     = "original" # keep the (sanitised) client name; photo_1.jpg on conflict
}

set "documents" {
  extensions = concat(documents, text, ["pdf"])
  max_size   = "64MiB"
}

set "attachments" {
  extensions = all_except(executables) # anything but so, exe, dll
  naming     = "uuid"                   # a random-looking name; only the extension is kept
  max_size   = "256MiB"
  # destination = "./uploads/attachments"            # the default
  # url         = "https://files.example.com/attachments/" # when another server publishes them
}

# Tell your app what happened to uploads: signed POSTs following Standard Webhooks, from
# a durable outbox in data_dir (see "Integrate with your app" in the README).
# notify "app" {
#   url         = "https://app.example.com/hooks/uploads"
#   secret_file = "./secrets/notify.key" # whsec_ and the base64 of 32 random bytes
#   sets        = ["photos"]             # default: every set
#   events      = ["upload.placed", "upload.rejected"] # default: all five
#   timeout     = "10s"
#   max_age     = "72h"
# }

# A set only your app's users may upload to: each request carries an HS256 JWT the app
# mints (aud = the set, exp; sub, max_size, folder, name optional). Try one with
# `uploadsets token -set avatars -sub alice`.
# set "avatars" {
#   extensions = images
#   max_size   = "4MiB"
#   auth {
#     secret_file  = "./secrets/jwt.key" # openssl rand -hex 32 > secrets/jwt.key
#     public_files = true                # /files/avatars/... needs no token
#   }
# }
