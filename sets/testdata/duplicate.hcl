set "photos" {
  extensions = images
}

set "docs" {
  extensions = documents
}

set "photos" {
  extensions = text
}
