// Ownership metadata parsing (agent/domain_metadata.h) and the monitor's pure helpers, without
// libvirt: well-formed owners in both namespaces, entities, and hostile input.
#include "agent/domain_metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <string>

#include "agent/libvirt_monitor.h"
#include "temp_dir.h"

namespace {

using mchain::agent::DomainOwner;
using mchain::agent::owner_from_domain_xml;
using mchain::agent::owner_metadata_xml;
using mchain::agent::OwnerSource;
using mchain::agent::parse_owner_metadata;
using ::testing::HasSubstr;

std::string ours(std::string_view user) {
  return "<mchain:owner xmlns:mchain=\"http://mchain.invalid/xmlns/libvirt/1\">" +
         std::string(user) + "</mchain:owner>";
}

// As Nova writes it into the domain XML (nova/virt/libvirt/config.py), trimmed.
std::string nova(std::string_view ns, std::string_view owner_body) {
  return "<nova:instance xmlns:nova=\"" + std::string(ns) +
         "\">\n"
         "  <nova:package version=\"27.1.0\"/>\n"
         "  <nova:name>web-1</nova:name>\n"
         "  <nova:creationTime>2024-05-02 10:11:12</nova:creationTime>\n"
         "  <nova:flavor name=\"m1.small\"><nova:memory>2048</nova:memory></nova:flavor>\n"
         "  <nova:owner>" +
         std::string(owner_body) +
         "</nova:owner>\n"
         "  <nova:root type=\"image\" uuid=\"1b2c\"/>\n"
         "</nova:instance>\n";
}

constexpr std::string_view kNovaUser =
    "<nova:user uuid=\"85bd8a1bd6e4419f8f2ec0f5d1de5a20\">demo</nova:user>"
    "<nova:project uuid=\"0d8e1a7c95b34cd9a4b2d2b1f1c7d1e0\">demo-project</nova:project>";

std::string parse_error(std::string_view xml, OwnerSource source = OwnerSource::kMchain) {
  auto owner = parse_owner_metadata(xml, source);
  EXPECT_FALSE(owner) << "parsed owner '" << (owner ? owner->user : "")
                      << "' from: " << xml.substr(0, 200);
  return owner ? std::string() : owner.error().message;
}

// --- our namespace ----------------------------------------------------------------------------

TEST(OwnerMetadata, OursAsLibvirtReturnsIt) {
  // virDomainGetMetadata takes the namespace off the element it returns.
  auto owner = parse_owner_metadata("<owner>alice</owner>", OwnerSource::kMchain);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "alice");
  EXPECT_EQ(owner->source, OwnerSource::kMchain);
  EXPECT_TRUE(owner->nova_namespace.empty());
  EXPECT_TRUE(owner->user_uuid.empty());
}

TEST(OwnerMetadata, OursWithItsNamespace) {
  auto prefixed = parse_owner_metadata(ours("alice"), OwnerSource::kMchain);
  ASSERT_TRUE(prefixed) << prefixed.error().message;
  EXPECT_EQ(prefixed->user, "alice");
  auto default_ns = parse_owner_metadata(
      "<owner xmlns=\"http://mchain.invalid/xmlns/libvirt/1\">bob@example.org</owner>",
      OwnerSource::kMchain);
  ASSERT_TRUE(default_ns) << default_ns.error().message;
  EXPECT_EQ(default_ns->user, "bob@example.org");
}

TEST(OwnerMetadata, OursInAnotherNamespaceIsRefused) {
  EXPECT_THAT(parse_error("<x:owner xmlns:x=\"http://example.org/other\">alice</x:owner>"),
              HasSubstr("namespace"));
  // Nova's namespace is not ours either.
  EXPECT_THAT(parse_error("<owner xmlns=\"http://openstack.org/xmlns/libvirt/nova/1.1\">a</owner>"),
              HasSubstr("namespace"));
}

TEST(OwnerMetadata, EntitiesCdataCommentsAndWhitespace) {
  struct Case {
    std::string xml;
    std::string user;
  };
  const Case cases[] = {
      {"<owner>al&#105;ce</owner>", "alice"},
      {"<owner>&#x61;&#x6C;ice</owner>", "alice"},
      {"<owner><![CDATA[carol]]></owner>", "carol"},
      {"<owner><!-- set by ops -->dave<?pi x?></owner>", "dave"},
      {"<owner>\n   erin.x_y:z-1  \t\r\n</owner>", "erin.x_y:z-1"},
      {"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<owner>frank</owner>\n", "frank"},
      {"<owner>gr<!-- split -->ace</owner>", "grace"},
  };
  for (const Case& c : cases) {
    auto owner = parse_owner_metadata(c.xml, OwnerSource::kMchain);
    ASSERT_TRUE(owner) << c.xml << ": " << owner.error().message;
    EXPECT_EQ(owner->user, c.user) << c.xml;
  }
}

TEST(OwnerMetadata, DecodedNamesMustBeValidIds) {
  // Decoded first, then checked: "&amp;" is an '&', which an id may not contain.
  EXPECT_THAT(parse_error("<owner>a&amp;b</owner>"),
              HasSubstr("'a&b' in <owner> is not a valid user id"));
  EXPECT_THAT(parse_error("<owner>a&lt;script&gt;</owner>"), HasSubstr("not a valid user id"));
  EXPECT_THAT(parse_error("<owner>alice smith</owner>"), HasSubstr("not a valid user id"));
  EXPECT_THAT(parse_error("<owner>\xc3\xa5lice</owner>"), HasSubstr("not a valid user id"));
  EXPECT_THAT(parse_error("<owner>a&#9;b</owner>"), HasSubstr("'a\\x09b'"));
  EXPECT_THAT(parse_error("<owner>" + std::string(65, 'a') + "</owner>"),
              HasSubstr("not a valid user id"));
  EXPECT_TRUE(
      parse_owner_metadata("<owner>" + std::string(64, 'a') + "</owner>", OwnerSource::kMchain));
  // Quoting in messages keeps them short and printable.
  auto long_name = parse_error("<owner>" + std::string(2000, '#') + "</owner>");
  EXPECT_LT(long_name.size(), 300u);
}

TEST(OwnerMetadata, MissingEmptyAndMisshapen) {
  EXPECT_THAT(parse_error(""), HasSubstr("is empty"));
  EXPECT_THAT(parse_error("<owner/>"), HasSubstr("<owner> is empty"));
  EXPECT_THAT(parse_error("<owner>   \n </owner>"), HasSubstr("<owner> is empty"));
  EXPECT_THAT(parse_error("<user>alice</user>"), HasSubstr("expected <owner>"));
  EXPECT_THAT(parse_error("<owner><name>alice</name></owner>"), HasSubstr("expected only text"));
}

TEST(OwnerMetadata, GarbageIsAnErrorNotACrash) {
  const std::string inputs[] = {
      "alice",
      "not xml at all <",
      "<owner>alice",
      "<owner>alice</own>",
      "<owner>alice</owner><owner>bob</owner>",
      "<owner>&undefined;</owner>",
      "<owner>&#0;</owner>",
      "<owner>a&#xD800;</owner>",
      std::string("<owner>al\0ice</owner>", 20),
      "\xff\xfe<\x00o\x00",
      "<owner>\xc3\x28</owner>",  // not UTF-8
      "<owner attr='1' attr='2'>x</owner>",
      "<ns:owner>alice</ns:owner>",  // undeclared prefix
  };
  for (const std::string& input : inputs) {
    auto owner = parse_owner_metadata(input, OwnerSource::kMchain);
    EXPECT_FALSE(owner) << "accepted: " << input;
    auto nova_owner = parse_owner_metadata(input, OwnerSource::kNova);
    EXPECT_FALSE(nova_owner) << "accepted as Nova: " << input;
  }
}

// --- hostile input ----------------------------------------------------------------------------

TEST(OwnerMetadata, ExternalEntitiesAreNeverRead) {
  mchain::testing::TempDir tmp("mchain-xxe");
  const auto secret = tmp.path() / "secret";
  std::ofstream(secret) << "mallory";
  const std::string uri = "file://" + secret.string();
  const std::string inputs[] = {
      "<!DOCTYPE owner [<!ENTITY xxe SYSTEM \"" + uri + "\">]><owner>&xxe;</owner>",
      "<!DOCTYPE owner [<!ENTITY % p SYSTEM \"" + uri + "\"> %p;]><owner>alice</owner>",
      "<!DOCTYPE owner SYSTEM \"" + uri + "\"><owner>alice</owner>",
      "<!DOCTYPE owner SYSTEM \"http://127.0.0.1:9/owner.dtd\"><owner>alice</owner>",
      "<!DOCTYPE owner [<!ENTITY name \"alice\">]><owner>&name;</owner>",
      "<?xml version=\"1.0\"?><!DOCTYPE owner><owner>alice</owner>",
  };
  for (const std::string& input : inputs) {
    EXPECT_THAT(parse_error(input), HasSubstr("DOCTYPE")) << input;
    EXPECT_THAT(parse_error(input, OwnerSource::kNova), HasSubstr("DOCTYPE")) << input;
  }
  // The same for whole domain XML.
  auto domain =
      owner_from_domain_xml("<!DOCTYPE domain [<!ENTITY xxe SYSTEM \"" + uri +
                            "\">]><domain><metadata>" + ours("&xxe;") + "</metadata></domain>");
  ASSERT_FALSE(domain);
  EXPECT_THAT(domain.error().message, HasSubstr("DOCTYPE"));
}

TEST(OwnerMetadata, EntityExpansionBombIsRefusedQuickly) {
  std::string bomb = "<!DOCTYPE owner [<!ENTITY a0 \"aaaaaaaaaa\">";
  for (int i = 1; i < 10; ++i) {
    bomb += "<!ENTITY a" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) bomb += "&a" + std::to_string(i - 1) + ";";
    bomb += "\">";
  }
  bomb += "]><owner>&a9;</owner>";
  auto started = std::chrono::steady_clock::now();
  EXPECT_THAT(parse_error(bomb), HasSubstr("DOCTYPE"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(OwnerMetadata, HugeInputIsRefusedBeforeParsing) {
  std::string huge =
      "<owner>" + std::string(mchain::agent::kMaxMetadataBytes, ' ') + "alice</owner>";
  EXPECT_THAT(parse_error(huge), HasSubstr("more than the 65536 accepted"));
  // Below the limit, padding is just whitespace.
  std::string padded = "<owner>" + std::string(60'000, ' ') + "alice</owner>";
  auto owner = parse_owner_metadata(padded, OwnerSource::kMchain);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "alice");
}

TEST(OwnerMetadata, DeepNestingIsAnError) {
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "<a>";
  for (int i = 0; i < 5000; ++i) deep += "</a>";
  ASSERT_LT(deep.size(), mchain::agent::kMaxMetadataBytes);
  parse_error(deep);
  parse_error(deep, OwnerSource::kNova);
  std::string nested_owner = "<owner>";
  for (int i = 0; i < 1000; ++i) nested_owner += "<owner>";
  nested_owner += "alice";
  for (int i = 0; i < 1000; ++i) nested_owner += "</owner>";
  nested_owner += "</owner>";
  parse_error(nested_owner);
}

// --- Nova -------------------------------------------------------------------------------------

TEST(OwnerMetadata, Nova11AsInDomainXml) {
  auto owner =
      parse_owner_metadata(nova(mchain::agent::kNovaNamespace11, kNovaUser), OwnerSource::kNova);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "demo");
  EXPECT_EQ(owner->source, OwnerSource::kNova);
  EXPECT_EQ(owner->nova_namespace, mchain::agent::kNovaNamespace11);
  EXPECT_EQ(owner->user_uuid, "85bd8a1bd6e4419f8f2ec0f5d1de5a20");
  EXPECT_EQ(owner->project, "demo-project");
  EXPECT_EQ(owner->project_uuid, "0d8e1a7c95b34cd9a4b2d2b1f1c7d1e0");
}

TEST(OwnerMetadata, Nova10) {
  auto owner =
      parse_owner_metadata(nova(mchain::agent::kNovaNamespace10, kNovaUser), OwnerSource::kNova);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "demo");
  EXPECT_EQ(owner->nova_namespace, mchain::agent::kNovaNamespace10);
}

TEST(OwnerMetadata, NovaAsLibvirtReturnsIt) {
  // What `virsh metadata DOMAIN http://openstack.org/xmlns/libvirt/nova/1.1` prints.
  const std::string stripped =
      "<instance>\n  <name>vm1</name>\n  <owner><user uuid=\"85bd\">bob</user>"
      "<project uuid=\"0d8e\">demo</project></owner>\n</instance>";
  auto owner = parse_owner_metadata(stripped, OwnerSource::kNova);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "bob");
  EXPECT_EQ(owner->user_uuid, "85bd");
  EXPECT_EQ(owner->project, "demo");
  EXPECT_TRUE(owner->nova_namespace.empty());  // read_domain_owner fills in the one it asked for
}

TEST(OwnerMetadata, NovaEntitiesAndOptionalProject) {
  auto owner = parse_owner_metadata("<instance><owner><user>ad&#109;in</user></owner></instance>",
                                    OwnerSource::kNova);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "admin");
  EXPECT_TRUE(owner->user_uuid.empty());
  EXPECT_TRUE(owner->project.empty());
}

TEST(OwnerMetadata, NovaMisshapen) {
  const std::string ns11(mchain::agent::kNovaNamespace11);
  EXPECT_THAT(parse_error("<instance><name>x</name></instance>", OwnerSource::kNova),
              HasSubstr("has no <owner>"));
  EXPECT_THAT(
      parse_error("<instance><owner><project>p</project></owner></instance>", OwnerSource::kNova),
      HasSubstr("has no <user>"));
  EXPECT_THAT(parse_error("<instance><owner><user>a</user><user>b</user></owner></instance>",
                          OwnerSource::kNova),
              HasSubstr("more than one <user>"));
  EXPECT_THAT(parse_error("<instance><owner><user>a</user></owner><owner><user>b</user></owner>"
                          "</instance>",
                          OwnerSource::kNova),
              HasSubstr("more than one <owner>"));
  EXPECT_THAT(parse_error("<instance><owner><user>John Smith</user></owner></instance>",
                          OwnerSource::kNova),
              HasSubstr("not a valid user id"));
  EXPECT_THAT(parse_error("<instance><owner><user/></owner></instance>", OwnerSource::kNova),
              HasSubstr("<user> is empty"));
  EXPECT_THAT(parse_error("<owner>alice</owner>", OwnerSource::kNova),
              HasSubstr("expected Nova's <instance>"));
  // Children in another namespace than the instance do not count.
  EXPECT_THAT(parse_error("<nova:instance xmlns:nova=\"" + ns11 +
                              "\"><owner><user>a</user></owner></nova:instance>",
                          OwnerSource::kNova),
              HasSubstr("has no <owner>"));
  EXPECT_THAT(
      parse_error("<nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/2.0\">"
                  "<nova:owner><nova:user>a</nova:user></nova:owner></nova:instance>",
                  OwnerSource::kNova),
      HasSubstr("namespace"));
}

TEST(OwnerMetadata, NovaExtrasThatAreUnfitAreDropped) {
  auto owner = parse_owner_metadata(
      "<instance><owner><user uuid=\"a&#10;b\">alice</user>"
      "<project>" +
          std::string(300, 'p') + "</project></owner></instance>",
      OwnerSource::kNova);
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_EQ(owner->user, "alice");
  EXPECT_TRUE(owner->user_uuid.empty());
  EXPECT_TRUE(owner->project.empty());
}

// --- whole domain XML ---------------------------------------------------------------------------

std::string domain_with(std::string_view metadata) {
  return "<domain type='kvm'>\n  <name>vm</name>\n  "
         "<uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n"
         "  <metadata>\n" +
         std::string(metadata) + "\n  </metadata>\n  <memory unit='KiB'>1024</memory>\n</domain>\n";
}

TEST(OwnerFromDomainXml, OursFirstThenNova11ThenNova10) {
  const std::string nova10 =
      nova(mchain::agent::kNovaNamespace10, "<nova:user uuid=\"1\">old</nova:user>");
  const std::string nova11 =
      nova(mchain::agent::kNovaNamespace11, "<nova:user uuid=\"2\">new</nova:user>");
  auto all = owner_from_domain_xml(domain_with(nova10 + nova11 + ours("alice")));
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_TRUE(*all);
  EXPECT_EQ((*all)->user, "alice");
  EXPECT_EQ((*all)->source, OwnerSource::kMchain);

  auto both_nova = owner_from_domain_xml(domain_with(nova10 + nova11));
  ASSERT_TRUE(both_nova && *both_nova);
  EXPECT_EQ((*both_nova)->user, "new");
  EXPECT_EQ((*both_nova)->nova_namespace, mchain::agent::kNovaNamespace11);

  auto old_nova = owner_from_domain_xml(domain_with(nova10));
  ASSERT_TRUE(old_nova && *old_nova);
  EXPECT_EQ((*old_nova)->user, "old");
  EXPECT_EQ((*old_nova)->nova_namespace, mchain::agent::kNovaNamespace10);
}

TEST(OwnerFromDomainXml, NoneIsNotAnError) {
  auto no_metadata = owner_from_domain_xml("<domain type='kvm'><name>vm</name></domain>");
  ASSERT_TRUE(no_metadata) << no_metadata.error().message;
  EXPECT_FALSE(*no_metadata);
  auto others = owner_from_domain_xml(
      domain_with("<app:x xmlns:app=\"http://example.org/app\"><owner>eve</owner></app:x>"
                  "<owner>eve</owner>"));
  ASSERT_TRUE(others) << others.error().message;
  EXPECT_FALSE(*others);
}

TEST(OwnerFromDomainXml, BrokenOwnerDoesNotFallThroughToNova) {
  auto broken = owner_from_domain_xml(
      domain_with(ours("not valid") + nova(mchain::agent::kNovaNamespace11, kNovaUser)));
  ASSERT_FALSE(broken);
  EXPECT_THAT(broken.error().message, HasSubstr("<mchain:owner>"));
  EXPECT_THAT(broken.error().message, HasSubstr("not a valid user id"));
}

TEST(OwnerFromDomainXml, NotADomain) {
  auto wrong = owner_from_domain_xml("<network><name>default</name></network>");
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("expected <domain>"));
  EXPECT_FALSE(owner_from_domain_xml("<domain>"));
  EXPECT_FALSE(owner_from_domain_xml(""));
}

TEST(OwnerMetadataXml, RoundTripsAndRefusesInvalidIds) {
  auto xml = owner_metadata_xml("alice@example.org");
  ASSERT_TRUE(xml) << xml.error().message;
  EXPECT_EQ(*xml, "<owner>alice@example.org</owner>");
  auto back = parse_owner_metadata(*xml, OwnerSource::kMchain);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->user, "alice@example.org");
  EXPECT_FALSE(owner_metadata_xml("a<b"));
  EXPECT_FALSE(owner_metadata_xml(""));
  EXPECT_FALSE(owner_metadata_xml("</owner><owner>root"));
}

// --- the monitor's pure helpers -----------------------------------------------------------------

TEST(LibvirtMonitorHelpers, ReconnectDelayDoublesWithJitterUpToTheCap) {
  mchain::agent::LibvirtMonitorOptions options;
  options.initial_backoff = std::chrono::milliseconds(100);
  options.max_backoff = std::chrono::milliseconds(1000);
  using std::chrono::milliseconds;
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 0, 0.0), milliseconds(50));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 0, 1.0), milliseconds(100));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 2, 0.0), milliseconds(200));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 2, 1.0), milliseconds(400));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 4, 1.0), milliseconds(1000));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 4, 0.0), milliseconds(500));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 4'000'000'000u, 1.0), milliseconds(1000));
  EXPECT_EQ(mchain::agent::reconnect_delay(options, 1, std::nan("")), milliseconds(200));
  // Never zero: no busy loop whatever the configuration.
  options.initial_backoff = milliseconds(0);
  options.max_backoff = milliseconds(0);
  EXPECT_GE(mchain::agent::reconnect_delay(options, 0, 0.0), milliseconds(1));
}

TEST(LibvirtMonitorHelpers, MigrationDetails) {
  using mchain::agent::is_migration_detail;
  using mchain::agent::Lifecycle;
  EXPECT_TRUE(is_migration_detail(Lifecycle::kStarted, VIR_DOMAIN_EVENT_STARTED_MIGRATED));
  EXPECT_TRUE(is_migration_detail(Lifecycle::kStopped, VIR_DOMAIN_EVENT_STOPPED_MIGRATED));
  EXPECT_TRUE(is_migration_detail(Lifecycle::kSuspended, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED));
  EXPECT_TRUE(is_migration_detail(Lifecycle::kSuspended, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY));
  EXPECT_TRUE(is_migration_detail(Lifecycle::kResumed, VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
  EXPECT_TRUE(is_migration_detail(Lifecycle::kResumed, VIR_DOMAIN_EVENT_RESUMED_POSTCOPY));
  EXPECT_FALSE(is_migration_detail(Lifecycle::kStarted, VIR_DOMAIN_EVENT_STARTED_BOOTED));
  EXPECT_FALSE(is_migration_detail(Lifecycle::kStopped, VIR_DOMAIN_EVENT_STOPPED_DESTROYED));
  // STOPPED_MIGRATED is 3; STARTED 3 is WAKEUP, not migration.
  EXPECT_FALSE(is_migration_detail(Lifecycle::kStarted, 3));
  EXPECT_FALSE(is_migration_detail(Lifecycle::kDefined, 1));
  EXPECT_EQ(mchain::agent::lifecycle_name(Lifecycle::kSuspended), "suspended");
  EXPECT_EQ(mchain::agent::lifecycle_name(static_cast<Lifecycle>(99)), "unknown");
  EXPECT_EQ(mchain::agent::domain_state_name(mchain::agent::DomainState::kShutoff), "shutoff");
}

}  // namespace
