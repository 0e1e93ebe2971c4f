# Mistakes in extensions, allow and deny.
set "a" {
  extensions = "images"
}

set "b" {
  extensions = [images, "pdf"]
}

set "c" {
  extensions = ["*", "!exe", "../x"]
}

set "d" {
  extensions = all_except(["exe", "bad ext"])
}

set "e" {
  extensions = images
  deny       = all
}

set "f" {
  extensions = ["png"]
  deny       = ["png"]
}

set "g" {
  extensions = all_except(executables)
  deny       = ["exe", "html"]
  allow      = ["png"]
}

set "h" {
  extensions = concat(images, "pdf")
}

set "i" {
  extensions = ["png", 7, true]
}
