// Base64 as the guest agent speaks it (RFC 4648 §4, standard alphabet, padded, no line
// breaks): file contents, exec input and output travel in it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "chain/types.h"

namespace mchain::measure::qga {

std::string encode_base64(ByteView data);

// Strict: a length that is a multiple of 4, only alphabet characters, padding only at the
// end, and zero bits under the padding; nullopt on anything else. Data from a guest is
// untrusted, and a lenient decoder would let two texts stand for the same bytes.
std::optional<Bytes> decode_base64(std::string_view text);

}  // namespace mchain::measure::qga
