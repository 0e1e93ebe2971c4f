log {
  level  = "loud"
  format = "xml"
  colour = true
}
log {
  level = "info"
}
set "a" {}
