# Syntax errors do not hide the rest of the file's mistakes.
listen = "127.0.0.1:8080"

set "photos" {
  extensions = images
  max_size   "16MiB"
}

set "notes" {
  extensions = text
  naming     = "random"
}
