#include "agent/domain_metadata.h"

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <utility>

#include "chain/types.h"
#include "measure/qga/libvirt_glue.h"

namespace mchain::agent {

using measure::qga::LibvirtError;
using measure::qga::take_last_libvirt_error;

namespace {

struct DocFreer {
  void operator()(xmlDoc* doc) const noexcept { xmlFreeDoc(doc); }
};
struct ContextFreer {
  void operator()(xmlParserCtxt* context) const noexcept { xmlFreeParserCtxt(context); }
};
struct XmlCharFreer {
  void operator()(xmlChar* text) const noexcept { xmlFree(text); }
};
struct MallocFreer {
  void operator()(char* text) const noexcept { std::free(text); }
};
using Doc = std::unique_ptr<xmlDoc, DocFreer>;
using Context = std::unique_ptr<xmlParserCtxt, ContextFreer>;
using XmlString = std::unique_ptr<xmlChar, XmlCharFreer>;
using LibvirtString = std::unique_ptr<char, MallocFreer>;

const xmlChar* xml_chars(std::string_view literal) {
  // Only ever called with the namespace constants, which are string literals (NUL-terminated).
  return reinterpret_cast<const xmlChar*>(literal.data());
}
std::string_view text_of(const xmlChar* text) {
  return text == nullptr ? std::string_view()
                         : std::string_view(reinterpret_cast<const char*>(text));
}

// Something from the input, fit for an error message: short, and no control characters.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "'";
}

// Marks a parse that met a DOCTYPE; compared by address through the context's _private.
char doctype_seen_marker;

// SAX hook for "<!DOCTYPE": stop right there, before the internal subset (where entities would be
// declared) is read and before an external subset could be looked at. Runs inside libxml2: C
// code, so it must not throw, and does not.
void refuse_doctype(void* user_data, const xmlChar* /*name*/, const xmlChar* /*external_id*/,
                    const xmlChar* /*system_id*/) noexcept {
  auto* context = static_cast<xmlParserCtxt*>(user_data);
  context->_private = &doctype_seen_marker;
  xmlStopParser(context);
}

Result<Doc> parse_xml(std::string_view xml, std::size_t limit, std::string_view what) {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });  // libxml2's global setup is not thread-safe
  if (xml.empty()) return fail(std::string(what) + " is empty");
  if (xml.size() > limit || xml.size() > INT_MAX) {
    return fail(std::string(what) + " is " + std::to_string(xml.size()) + " bytes, more than the " +
                std::to_string(limit) + " accepted");
  }
  Context context{xmlNewParserCtxt()};
  if (!context) return fail("cannot parse " + std::string(what) + ": out of memory");
  context->sax->internalSubset = refuse_doctype;
  // No XML_PARSE_NOENT, DTDLOAD, DTDATTR, XINCLUDE or HUGE: nothing is fetched or expanded beyond
  // the predefined entities and character references, and libxml2's depth and size limits hold.
  // NOCDATA folds CDATA sections into text.
  constexpr int kOptions =
      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
  Doc doc{xmlCtxtReadMemory(context.get(), xml.data(), static_cast<int>(xml.size()), nullptr,
                            nullptr, kOptions)};
  if (context->_private == &doctype_seen_marker) {
    return fail(std::string(what) + " has a DOCTYPE, which is not accepted");
  }
  if (!doc || context->wellFormed == 0) {
    std::string reason = "not well-formed XML";
    if (const xmlError* error = xmlCtxtGetLastError(context.get());
        error != nullptr && error->message != nullptr) {
      reason = error->message;
      while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
      reason += " (line " + std::to_string(error->line) + ")";
    }
    return fail(std::string(what) + " is not usable XML: " + reason);
  }
  if (xmlDocGetRootElement(doc.get()) == nullptr) {
    return fail(std::string(what) + " has no root element");
  }
  return doc;
}

// `expected`: the namespace an element must be in, or nullptr for none (libvirt strips ours).
bool in_namespace(const xmlNode* node, const xmlChar* expected) {
  if (node->ns == nullptr || node->ns->href == nullptr) return expected == nullptr;
  return expected != nullptr && xmlStrEqual(node->ns->href, expected) != 0;
}

bool is_element(const xmlNode* node, std::string_view local, const xmlChar* ns) {
  return node->type == XML_ELEMENT_NODE && text_of(node->name) == local && in_namespace(node, ns);
}

// The one child element <local> of `parent`; nullptr when there is none, an Error when several.
Result<const xmlNode*> only_child(const xmlNode* parent, std::string_view local,
                                  const xmlChar* ns) {
  const xmlNode* found = nullptr;
  for (const xmlNode* child = parent->children; child != nullptr; child = child->next) {
    if (!is_element(child, local, ns)) continue;
    if (found != nullptr) {
      return fail("more than one <" + std::string(local) + "> in <" +
                  std::string(text_of(parent->name)) + ">");
    }
    found = child;
  }
  return found;
}

bool xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && xml_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && xml_space(text.back())) text.remove_suffix(1);
  return text;
}

// The character data of an element that holds only text (comments allowed), trimmed.
Result<std::string> element_text(const xmlNode* element) {
  std::string text;
  for (const xmlNode* child = element->children; child != nullptr; child = child->next) {
    switch (child->type) {
      case XML_TEXT_NODE:
      case XML_CDATA_SECTION_NODE: text += text_of(child->content); break;
      case XML_COMMENT_NODE:
      case XML_PI_NODE: break;
      case XML_ELEMENT_NODE:
        return fail("<" + std::string(text_of(element->name)) + "> holds an element <" +
                    std::string(text_of(child->name)) + ">, expected only text");
      default:
        return fail("<" + std::string(text_of(element->name)) +
                    "> holds something other than text");
    }
  }
  return std::string(trim(text));
}

Result<std::string> user_name(const xmlNode* element) {
  auto text = element_text(element);
  if (!text) return std::unexpected(text.error());
  if (text->empty()) return fail("<" + std::string(text_of(element->name)) + "> is empty");
  if (!valid_id(*text)) {
    return fail(quoted(*text) + " in <" + std::string(text_of(element->name)) +
                "> is not a valid user id (1-" + std::to_string(kMaxIdLength) +
                " characters of A-Z a-z 0-9 . _ : @ -)");
  }
  return std::move(*text);
}

// Informational extras from Nova: kept when short and printable, else dropped.
std::string extra(std::string_view text) {
  text = trim(text);
  if (text.size() > 255) return {};
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return {};
  }
  return std::string(text);
}

std::string attribute(const xmlNode* element, const char* name) {
  XmlString value{xmlGetNoNsProp(element, reinterpret_cast<const xmlChar*>(name))};
  return value ? extra(text_of(value.get())) : std::string();
}

Result<DomainOwner> mchain_owner(const xmlNode* root, const xmlChar* ns) {
  if (!is_element(root, "owner", ns)) {
    return fail("expected <owner>, found <" + std::string(text_of(root->name)) + ">");
  }
  auto user = user_name(root);
  if (!user) return std::unexpected(user.error());
  DomainOwner owner;
  owner.user = std::move(*user);
  owner.source = OwnerSource::kMchain;
  return owner;
}

// <instance><owner><user uuid="…">name</user><project uuid="…">name</project></owner>…</instance>
Result<DomainOwner> nova_owner(const xmlNode* root, const xmlChar* ns) {
  if (!is_element(root, "instance", ns)) {
    return fail("expected Nova's <instance>, found <" + std::string(text_of(root->name)) + ">");
  }
  auto owner = only_child(root, "owner", ns);
  if (!owner) return std::unexpected(owner.error());
  if (*owner == nullptr) return fail("Nova's <instance> has no <owner>");
  auto user = only_child(*owner, "user", ns);
  if (!user) return std::unexpected(user.error());
  if (*user == nullptr) return fail("Nova's <owner> has no <user>");
  auto name = user_name(*user);
  if (!name) return std::unexpected(name.error());
  DomainOwner result;
  result.user = std::move(*name);
  result.source = OwnerSource::kNova;
  if (ns != nullptr) result.nova_namespace = std::string(text_of(ns));
  result.user_uuid = attribute(*user, "uuid");
  auto project = only_child(*owner, "project", ns);
  if (!project) return std::unexpected(project.error());
  if (*project != nullptr) {
    if (auto text = element_text(*project)) result.project = extra(*text);
    result.project_uuid = attribute(*project, "uuid");
  }
  return result;
}

// The namespace the root of a metadata element for `source` may carry; nullptr: none (stripped).
Result<const xmlChar*> root_namespace(const xmlNode* root, OwnerSource source) {
  if (root->ns == nullptr || root->ns->href == nullptr) return nullptr;
  const xmlChar* href = root->ns->href;
  if (source == OwnerSource::kMchain) {
    if (xmlStrEqual(href, xml_chars(kMetadataNamespace)) != 0) return href;
  } else if (xmlStrEqual(href, xml_chars(kNovaNamespace11)) != 0 ||
             xmlStrEqual(href, xml_chars(kNovaNamespace10)) != 0) {
    return href;
  }
  return fail("<" + std::string(text_of(root->name)) + "> is in namespace " +
              quoted(text_of(href)) + ", not " + std::string(owner_source_name(source)) + "'s");
}

Result<DomainOwner> owner_from_element(const xmlNode* root, OwnerSource source, const xmlChar* ns) {
  return source == OwnerSource::kMchain ? mchain_owner(root, ns) : nova_owner(root, ns);
}

std::string element_description(OwnerSource source) {
  return source == OwnerSource::kMchain ? "<mchain:owner> metadata" : "<nova:instance> metadata";
}

std::string domain_name(virDomainPtr domain) {
  const char* name = virDomainGetName(domain);  // local: no call to the daemon
  return name != nullptr ? std::string(name) : std::string("?");
}

}  // namespace

std::string_view owner_source_name(OwnerSource source) {
  return source == OwnerSource::kMchain ? "mchain" : "nova";
}

Result<DomainOwner> parse_owner_metadata(std::string_view xml, OwnerSource source) {
  const std::string what = element_description(source);
  auto doc = parse_xml(xml, kMaxMetadataBytes, what);
  if (!doc) return std::unexpected(doc.error());
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  auto ns = root_namespace(root, source);
  if (!ns) return fail(what + ": " + ns.error().message);
  auto owner = owner_from_element(root, source, *ns);
  if (!owner) return fail(what + ": " + owner.error().message);
  return owner;
}

Result<std::optional<DomainOwner>> owner_from_domain_xml(std::string_view domain_xml) {
  auto doc = parse_xml(domain_xml, kMaxDomainXmlBytes, "domain XML");
  if (!doc) return std::unexpected(doc.error());
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  if (!is_element(root, "domain", nullptr)) {
    return fail("domain XML: expected <domain>, found <" + std::string(text_of(root->name)) + ">");
  }
  auto metadata = only_child(root, "metadata", nullptr);
  if (!metadata) return fail("domain XML: " + metadata.error().message);
  if (*metadata == nullptr) return std::nullopt;

  struct Candidate {
    OwnerSource source;
    std::string_view ns;
  };
  constexpr std::array<Candidate, 3> kCandidates = {{{OwnerSource::kMchain, kMetadataNamespace},
                                                     {OwnerSource::kNova, kNovaNamespace11},
                                                     {OwnerSource::kNova, kNovaNamespace10}}};
  for (const Candidate& candidate : kCandidates) {
    // libvirt keeps one element per namespace; the first is the one it would return.
    for (const xmlNode* child = (*metadata)->children; child != nullptr; child = child->next) {
      if (child->type != XML_ELEMENT_NODE || !in_namespace(child, xml_chars(candidate.ns))) {
        continue;
      }
      auto owner = owner_from_element(child, candidate.source, child->ns->href);
      if (!owner) {
        return fail("domain XML: " + element_description(candidate.source) + ": " +
                    owner.error().message);
      }
      return std::optional<DomainOwner>(std::move(*owner));
    }
  }
  return std::nullopt;
}

Result<Uuid> uuid_from_domain_xml(std::string_view domain_xml) {
  auto doc = parse_xml(domain_xml, kMaxDomainXmlBytes, "domain XML");
  if (!doc) return std::unexpected(doc.error());
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  if (!is_element(root, "domain", nullptr)) return fail("domain XML: expected <domain>");
  auto element = only_child(root, "uuid", nullptr);
  if (!element) return fail("domain XML: " + element.error().message);
  if (*element == nullptr) return fail("domain XML: no <uuid>");
  auto text = element_text(*element);
  if (!text) return fail("domain XML: <uuid>: " + text.error().message);
  auto uuid = Uuid::parse(*text);
  if (!uuid) return fail("domain XML: <uuid> '" + *text + "' is not a UUID");
  return *uuid;
}

Result<std::string> owner_metadata_xml(std::string_view user) {
  // valid_id admits no character that XML would need escaped ('&', '<', quotes).
  if (!valid_id(user)) return fail(quoted(user) + " is not a valid user id");
  return "<owner>" + std::string(user) + "</owner>";
}

Result<std::optional<DomainOwner>> read_domain_owner(virDomainPtr domain) {
  struct Candidate {
    OwnerSource source;
    std::string ns;
  };
  const std::array<Candidate, 3> candidates = {
      {{OwnerSource::kMchain, std::string(kMetadataNamespace)},
       {OwnerSource::kNova, std::string(kNovaNamespace11)},
       {OwnerSource::kNova, std::string(kNovaNamespace10)}}};
  for (const Candidate& candidate : candidates) {
    LibvirtString xml{
        virDomainGetMetadata(domain, VIR_DOMAIN_METADATA_ELEMENT, candidate.ns.c_str(), 0)};
    if (!xml) {
      LibvirtError error = take_last_libvirt_error();
      if (error.code == VIR_ERR_NO_DOMAIN_METADATA) continue;
      return fail("cannot read the metadata of domain " + domain_name(domain) + " (" +
                  candidate.ns + "): " + error.message);
    }
    auto owner = parse_owner_metadata(xml.get(), candidate.source);
    if (!owner) return fail("domain " + domain_name(domain) + ": " + owner.error().message);
    if (candidate.source == OwnerSource::kNova) owner->nova_namespace = candidate.ns;
    return std::optional<DomainOwner>(std::move(*owner));
  }
  return std::nullopt;
}

Status write_domain_owner(virDomainPtr domain, std::string_view user, unsigned int flags) {
  auto xml = owner_metadata_xml(user);
  if (!xml) return std::unexpected(xml.error());
  const std::string ns(kMetadataNamespace);
  const std::string prefix(kMetadataPrefix);
  if (virDomainSetMetadata(domain, VIR_DOMAIN_METADATA_ELEMENT, xml->c_str(), prefix.c_str(),
                           ns.c_str(), flags) != 0) {
    return fail("cannot set the owner of domain " + domain_name(domain) + ": " +
                take_last_libvirt_error().message);
  }
  return {};
}

Status remove_domain_owner(virDomainPtr domain, unsigned int flags) {
  const std::string ns(kMetadataNamespace);
  if (virDomainSetMetadata(domain, VIR_DOMAIN_METADATA_ELEMENT, nullptr, nullptr, ns.c_str(),
                           flags) != 0) {
    return fail("cannot remove the owner of domain " + domain_name(domain) + ": " +
                take_last_libvirt_error().message);
  }
  return {};
}

}  // namespace mchain::agent
