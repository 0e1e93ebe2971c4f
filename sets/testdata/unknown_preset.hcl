set "photos" {
  extensions = imagez
}

set "docs" {
  extensions = all_except(concat(executables, scriptz))
  allow      = [videos]
}
