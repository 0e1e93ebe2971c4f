# Every mistake in a notify block, each reported at its own position.
set "photos" {
  extensions = images
}

set "docs" {
  extensions = documents
}

notify "app" {
  url         = "app.example.com/hooks"
  secret_file = "./secrets/missing.key"
  sets        = ["photos", "photoz", "docs"]
  events      = ["upload.placed", "upload.done", 42]
  timeout     = "0s"
  max_age     = "3 days"
}

notify "empty-secret" {
  url         = "https://u:p@app.example.com/hooks"
  secret_file = "/dev/null"
  events      = []
}

notify "not-whsec" {
  url         = "http://127.0.0.1:9000/hooks?token=x#frag"
  secret_file = "notify.hcl"
  sets        = "photos"
  retries     = 3
}

notify "app" {
  secret_file = ""
}

notify "App!" {
  url = 9000
}
