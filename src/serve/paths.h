// Default locations of `hako serve`'s socket and state, shared by the daemon and `hako vm`.
//   root:  /run/hako/hako.sock and /var/lib/hako
//   users: $XDG_RUNTIME_DIR/hako/hako.sock (else /tmp/hako-UID/hako.sock) and $XDG_STATE_HOME/hako
//          (else ~/.local/state/hako)
// HAKO_SOCKET overrides the socket for both.
#pragma once

#include <string>

namespace hako::serve {

std::string default_socket_path();
std::string default_state_dir();

} // namespace hako::serve
