// Security keys (allauth's webauthn.js): when the browser refuses or the key is not touched in time, say so on
// the page instead of only in the console.
(function () {
  document.addEventListener('allauth.error', function (event) {
    const box = document.getElementById('webauthn-error')
    if (!box) return
    event.preventDefault()
    const error = event.detail && event.detail.exception
    const name = error && error.name
    box.textContent = name === 'NotAllowedError'
      ? 'The security key was not used (cancelled or timed out). Try again.'
      : 'The browser could not use the security key' + (error && error.message ? ': ' + error.message : '.')
    box.hidden = false
  })
})()
