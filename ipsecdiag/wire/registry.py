"""IANA registries for IKEv2 and IKEv1/ISAKMP, as IntEnums named after the IANA entries.

Sources: IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" and "Internet Key Exchange
(IKE) Attributes" / "Magic Numbers for ISAKMP Protocol" registries, RFC 7296, RFC 2407/2408/2409,
RFC 3947, RFC 7383, RFC 9242 (IKE_INTERMEDIATE), RFC 9370 (additional key exchanges) and the
ML-KEM-in-IKEv2 assignments. This is the one place numbers get names; do not scatter dicts.

``name_of(enum_cls, value)`` gives the IANA name or ``"<ENUM>_<value>"`` for unassigned or
private-use numbers, so unknown values still render and round-trip.
"""

from __future__ import annotations

from enum import IntEnum


def name_of(enum_cls: type[IntEnum], value: int) -> str:
    """IANA name for ``value`` or a stable placeholder such as ``NOTIFY_40000``."""
    try:
        return enum_cls(value).name
    except ValueError:
        return f"{_PLACEHOLDERS.get(enum_cls.__name__, enum_cls.__name__.upper())}_{value}"


# ------------------------------------------------------------------------------------------
# IKEv2
# ------------------------------------------------------------------------------------------


class ExchangeType(IntEnum):
    """IKEv2 Exchange Types (RFC 7296 §3.1); IKEv1 values are in :class:`V1Exchange`."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37
    IKE_SESSION_RESUME = 38
    GSA_AUTH = 39
    GSA_REGISTRATION = 40
    GSA_REKEY = 41
    GSA_INBAND_REKEY = 42
    IKE_INTERMEDIATE = 43
    IKE_FOLLOWUP_KE = 44


class PayloadType(IntEnum):
    """IKEv2 Payload Types (RFC 7296 §3.2). Member names are the short forms shown in reports."""

    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    Nonce = 40
    N = 41
    D = 42
    V = 43
    TSi = 44
    TSr = 45
    SK = 46
    CP = 47
    EAP = 48
    GSPM = 49
    IDg = 50
    GSA = 51
    KD = 52
    SKF = 53
    PS = 54


class ProtocolId(IntEnum):
    """IKEv2 Security Protocol Identifiers (RFC 7296 §3.3.1)."""

    NONE = 0
    IKE = 1
    AH = 2
    ESP = 3
    FC_ESP_HEADER = 4
    FC_CT_AUTHENTICATION = 5


class TransformType(IntEnum):
    """IKEv2 Transform Types (RFC 7296 §3.3.2, RFC 9370)."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    KE = 4  # formerly "D-H"
    ESN = 5
    ADDKE1 = 6
    ADDKE2 = 7
    ADDKE3 = 8
    ADDKE4 = 9
    ADDKE5 = 10
    ADDKE6 = 11
    ADDKE7 = 12
    KWA = 13
    GCAUTH = 14


class EncrId(IntEnum):
    """Transform Type 1 - Encryption Algorithm Transform IDs."""

    ENCR_DES_IV64 = 1
    ENCR_DES = 2
    ENCR_3DES = 3
    ENCR_RC5 = 4
    ENCR_IDEA = 5
    ENCR_CAST = 6
    ENCR_BLOWFISH = 7
    ENCR_3IDEA = 8
    ENCR_DES_IV32 = 9
    ENCR_NULL = 11
    ENCR_AES_CBC = 12
    ENCR_AES_CTR = 13
    ENCR_AES_CCM_8 = 14
    ENCR_AES_CCM_12 = 15
    ENCR_AES_CCM_16 = 16
    ENCR_AES_GCM_8 = 18
    ENCR_AES_GCM_12 = 19
    ENCR_AES_GCM_16 = 20
    ENCR_NULL_AUTH_AES_GMAC = 21
    ENCR_CAMELLIA_CBC = 23
    ENCR_CAMELLIA_CTR = 24
    ENCR_CAMELLIA_CCM_8 = 25
    ENCR_CAMELLIA_CCM_12 = 26
    ENCR_CAMELLIA_CCM_16 = 27
    ENCR_CHACHA20_POLY1305 = 28
    ENCR_AES_CCM_8_IIV = 29
    ENCR_AES_GCM_16_IIV = 30
    ENCR_CHACHA20_POLY1305_IIV = 31
    ENCR_KUZNYECHIK_MGM_KTREE = 32
    ENCR_MAGMA_MGM_KTREE = 33
    ENCR_KUZNYECHIK_MGM_MAC_KTREE = 34
    ENCR_MAGMA_MGM_MAC_KTREE = 35


class PrfId(IntEnum):
    """Transform Type 2 - Pseudorandom Function Transform IDs."""

    PRF_HMAC_MD5 = 1
    PRF_HMAC_SHA1 = 2
    PRF_HMAC_TIGER = 3
    PRF_AES128_XCBC = 4
    PRF_HMAC_SHA2_256 = 5
    PRF_HMAC_SHA2_384 = 6
    PRF_HMAC_SHA2_512 = 7
    PRF_AES128_CMAC = 8
    PRF_HMAC_STREEBOG_512 = 9


class IntegId(IntEnum):
    """Transform Type 3 - Integrity Algorithm Transform IDs."""

    NONE = 0
    AUTH_HMAC_MD5_96 = 1
    AUTH_HMAC_SHA1_96 = 2
    AUTH_DES_MAC = 3
    AUTH_KPDK_MD5 = 4
    AUTH_AES_XCBC_96 = 5
    AUTH_HMAC_MD5_128 = 6
    AUTH_HMAC_SHA1_160 = 7
    AUTH_AES_CMAC_96 = 8
    AUTH_AES_128_GMAC = 9
    AUTH_AES_192_GMAC = 10
    AUTH_AES_256_GMAC = 11
    AUTH_HMAC_SHA2_256_128 = 12
    AUTH_HMAC_SHA2_384_192 = 13
    AUTH_HMAC_SHA2_512_256 = 14
    # Private use (not IANA): strongSwan's number for the Linux "hmac(sha256)" truncated to 96
    # bits (draft-ietf-ipsec-ciph-sha-256-00), seen in `ip xfrm` and Wireshark's esp_sa.
    AUTH_HMAC_SHA2_256_96 = 1026


class KeGroup(IntEnum):
    """Transform Type 4 - Key Exchange Method Transform IDs (formerly D-H groups)."""

    NONE = 0
    MODP_768 = 1
    MODP_1024 = 2
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    MODP_1024_160 = 22
    MODP_2048_224 = 23
    MODP_2048_256 = 24
    ECP_192 = 25
    ECP_224 = 26
    ECP_224_BP = 27
    ECP_256_BP = 28
    ECP_384_BP = 29
    ECP_512_BP = 30
    CURVE25519 = 31
    CURVE448 = 32
    GOST3410_2012_256 = 33
    GOST3410_2012_512 = 34
    ML_KEM_512 = 35
    ML_KEM_768 = 36
    ML_KEM_1024 = 37


class EsnId(IntEnum):
    """Transform Type 5 - Extended Sequence Numbers Transform IDs."""

    NO_EXT_SEQ = 0
    EXT_SEQ = 1


class TransformAttr(IntEnum):
    """IKEv2 Transform Attribute Types."""

    KEY_LENGTH = 14


class IdType(IntEnum):
    """IKEv2 Identification Payload ID Types (RFC 7296 §3.5)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11
    ID_FC_NAME = 12
    ID_NULL = 13


class CertEncoding(IntEnum):
    """IKEv2 Certificate Encodings (RFC 7296 §3.6)."""

    PKCS7_WRAPPED_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_CERT_SIGNATURE = 4
    KERBEROS_TOKEN = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_CERT_ATTRIBUTE = 10
    RAW_RSA_KEY = 11
    HASH_URL_X509_CERT = 12
    HASH_URL_X509_BUNDLE = 13
    OCSP_CONTENT = 14
    RAW_PUBLIC_KEY = 15


class AuthMethod(IntEnum):
    """IKEv2 Authentication Method (RFC 7296 §3.8, RFC 4754, RFC 7427)."""

    RSA_DIGITAL_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DSS_DIGITAL_SIGNATURE = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    GENERIC_SECURE_PASSWORD = 12
    NULL_AUTHENTICATION = 13
    DIGITAL_SIGNATURE = 14


class TsType(IntEnum):
    """IKEv2 Traffic Selector Types (RFC 7296 §3.13.1)."""

    TS_IPV4_ADDR_RANGE = 7
    TS_IPV6_ADDR_RANGE = 8
    TS_FC_ADDR_RANGE = 9
    TS_SECLABEL = 10


class CfgType(IntEnum):
    """IKEv2 Configuration Payload CFG Types."""

    CFG_REQUEST = 1
    CFG_REPLY = 2
    CFG_SET = 3
    CFG_ACK = 4


class CfgAttr(IntEnum):
    """IKEv2 Configuration Payload Attribute Types."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    MIP6_HOME_PREFIX = 16
    INTERNAL_IP6_LINK = 17
    INTERNAL_IP6_PREFIX = 18
    HOME_AGENT_ADDRESS = 19
    P_CSCF_IP4_ADDRESS = 20
    P_CSCF_IP6_ADDRESS = 21
    FTT_KAT = 22
    EXTERNAL_SOURCE_IP4_NAT_INFO = 23
    TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24
    INTERNAL_DNS_DOMAIN = 25
    INTERNAL_DNSSEC_TA = 26
    ENCDNS_IP4 = 27
    ENCDNS_IP6 = 28
    ENCDNS_DIGEST_INFO = 29


class NotifyType(IntEnum):
    """IKEv2 Notify Message Types: errors (1-16383) and status (16384-...)."""

    # -- error types
    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    UNACCEPTABLE_ADDRESSES = 40
    UNEXPECTED_NAT_DETECTED = 41
    USE_ASSIGNED_HoA = 42
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    INVALID_GROUP_ID = 45
    AUTHORIZATION_FAILED = 46
    STATE_NOT_FOUND = 47
    TS_MAX_QUEUE = 48
    REGISTRATION_FAILED = 49
    # -- status types
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396
    ADDITIONAL_IP4_ADDRESS = 16397
    ADDITIONAL_IP6_ADDRESS = 16398
    NO_ADDITIONAL_ADDRESSES = 16399
    UPDATE_SA_ADDRESSES = 16400
    COOKIE2 = 16401
    NO_NATS_ALLOWED = 16402
    AUTH_LIFETIME = 16403
    MULTIPLE_AUTH_SUPPORTED = 16404
    ANOTHER_AUTH_FOLLOWS = 16405
    REDIRECT_SUPPORTED = 16406
    REDIRECT = 16407
    REDIRECTED_FROM = 16408
    TICKET_LT_OPAQUE = 16409
    TICKET_REQUEST = 16410
    TICKET_ACK = 16411
    TICKET_NACK = 16412
    TICKET_OPAQUE = 16413
    LINK_ID = 16414
    USE_WESP_MODE = 16415
    ROHC_SUPPORTED = 16416
    EAP_ONLY_AUTHENTICATION = 16417
    CHILDLESS_IKEV2_SUPPORTED = 16418
    QUICK_CRASH_DETECTION = 16419
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421
    IKEV2_MESSAGE_ID_SYNC = 16422
    IPSEC_REPLAY_COUNTER_SYNC = 16423
    SECURE_PASSWORD_METHODS = 16424
    PSK_PERSIST = 16425
    PSK_CONFIRM = 16426
    ERX_SUPPORTED = 16427
    IFOM_CAPABILITY = 16428
    SENDER_REQUEST_ID = 16429
    IKEV2_FRAGMENTATION_SUPPORTED = 16430
    SIGNATURE_HASH_ALGORITHMS = 16431
    CLONE_IKE_SA_SUPPORTED = 16432
    CLONE_IKE_SA = 16433
    PUZZLE = 16434
    USE_PPK = 16435
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438
    IP4_ALLOWED = 16439
    IP6_ALLOWED = 16440
    ADDITIONAL_KEY_EXCHANGE = 16441
    USE_AGGFRAG = 16442
    SUPPORTED_AUTH_METHODS = 16443
    SA_RESOURCE_INFO = 16444
    USE_PPK_INT = 16445
    PPK_IDENTITY_KEY = 16446


def notify_is_error(notify_type: int) -> bool:
    """RFC 7296 §3.10.1: types below 16384 are errors (8192-16383 private-use errors)."""
    return 0 < notify_type < 16384


class HashAlgorithm(IntEnum):
    """IKEv2 Hash Algorithms (RFC 7427 §7), carried in N(SIGNATURE_HASH_ALGORITHMS)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5  # RFC 8420 (EdDSA)
    STREEBOG_256 = 6
    STREEBOG_512 = 7


class GatewayIdType(IntEnum):
    """IKEv2 Gateway Identity Types (RFC 5685 §10), in N(REDIRECT) / N(REDIRECTED_FROM)."""

    IPV4_ADDR = 1
    IPV6_ADDR = 2
    FQDN = 3


# ------------------------------------------------------------------------------------------
# IKEv1 / ISAKMP (RFC 2407, 2408, 2409, 3947)
# ------------------------------------------------------------------------------------------


class V1Exchange(IntEnum):
    """ISAKMP Exchange Types (RFC 2408 §3.1, RFC 2409, Mode-Config draft)."""

    NONE = 0
    BASE = 1
    MAIN_MODE = 2  # Identity Protection
    AUTHENTICATION_ONLY = 3
    AGGRESSIVE_MODE = 4
    INFORMATIONAL = 5
    TRANSACTION = 6  # Mode-Config / XAUTH
    QUICK_MODE = 32
    NEW_GROUP_MODE = 33


class V1PayloadType(IntEnum):
    """ISAKMP Next Payload Types (RFC 2408 §3.1, RFC 3947, drafts)."""

    NONE = 0
    SA = 1
    P = 2
    T = 3
    KE = 4
    ID = 5
    CERT = 6
    CR = 7
    HASH = 8
    SIG = 9
    Nonce = 10
    N = 11
    D = 12
    V = 13
    ATTR = 14  # Mode-Config attribute payload
    SAK = 15
    SAT = 16
    KD = 17
    SEQ = 18
    POP = 19
    NAT_D = 20  # RFC 3947
    NAT_OA = 21  # RFC 3947
    GAP = 22
    NAT_D_DRAFT = 130  # draft-ietf-ipsec-nat-t-ike-01..03
    NAT_OA_DRAFT = 131
    FRAG = 132  # Cisco IKE fragmentation


class V1ProtocolId(IntEnum):
    """IPsec DOI Security Protocol Identifiers (RFC 2407 §4.4.1)."""

    RESERVED = 0
    PROTO_ISAKMP = 1
    PROTO_IPSEC_AH = 2
    PROTO_IPSEC_ESP = 3
    PROTO_IPCOMP = 4


class V1NotifyType(IntEnum):
    """ISAKMP Notify Message Types (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706)."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137
    CISCO_LOAD_BALANCE = 40501
    CISCO_UNKNOWN_40502 = 40502
    CISCO_PRESHARED_KEY_HASH = 40503


def v1_notify_is_error(notify_type: int) -> bool:
    """RFC 2408 §3.14.1: 1-16383 are errors."""
    return 0 < notify_type < 16384


class V1AttrClass(IntEnum):
    """IKE (phase 1) SA attribute classes (RFC 2409 Appendix A)."""

    ENCRYPTION_ALGORITHM = 1
    HASH_ALGORITHM = 2
    AUTHENTICATION_METHOD = 3
    GROUP_DESCRIPTION = 4
    GROUP_TYPE = 5
    GROUP_PRIME = 6
    GROUP_GENERATOR_ONE = 7
    GROUP_GENERATOR_TWO = 8
    GROUP_CURVE_A = 9
    GROUP_CURVE_B = 10
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    PRF = 13
    KEY_LENGTH = 14
    FIELD_SIZE = 15
    GROUP_ORDER = 16


class V1EncrAlg(IntEnum):
    """IKE phase 1 Encryption Algorithm (attribute class 1)."""

    DES_CBC = 1
    IDEA_CBC = 2
    BLOWFISH_CBC = 3
    RC5_R16_B64_CBC = 4
    TRIPLE_DES_CBC = 5  # "3DES-CBC"
    CAST_CBC = 6
    AES_CBC = 7
    CAMELLIA_CBC = 8


class V1HashAlg(IntEnum):
    """IKE phase 1 Hash Algorithm (attribute class 2)."""

    MD5 = 1
    SHA = 2
    TIGER = 3
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class V1AuthMethod(IntEnum):
    """IKE phase 1 Authentication Method (attribute class 3), incl. XAUTH values."""

    PRE_SHARED_KEY = 1
    DSS_SIGNATURES = 2
    RSA_SIGNATURES = 3
    ENCRYPTION_WITH_RSA = 4
    REVISED_ENCRYPTION_WITH_RSA = 5
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    HYBRID_INIT_RSA = 64221
    HYBRID_RESP_RSA = 64222
    HYBRID_INIT_DSS = 64223
    HYBRID_RESP_DSS = 64224
    XAUTH_INIT_PRESHARED = 65001
    XAUTH_RESP_PRESHARED = 65002
    XAUTH_INIT_DSS = 65003
    XAUTH_RESP_DSS = 65004
    XAUTH_INIT_RSA = 65005
    XAUTH_RESP_RSA = 65006
    XAUTH_INIT_RSA_ENCRYPTION = 65007
    XAUTH_RESP_RSA_ENCRYPTION = 65008
    XAUTH_INIT_RSA_REV_ENCRYPTION = 65009
    XAUTH_RESP_RSA_REV_ENCRYPTION = 65010


class V1LifeType(IntEnum):
    SECONDS = 1
    KILOBYTES = 2


class V1GroupType(IntEnum):
    """IKE phase 1 Group Type (attribute class 5, RFC 2409 Appendix A)."""

    MODP = 1
    ECP = 2
    EC2N = 3


class V1Doi(IntEnum):
    """ISAKMP Domain of Interpretation (RFC 2408 §3.4, RFC 2407, RFC 6407)."""

    ISAKMP = 0
    IPSEC = 1
    GDOI = 2


class V1Situation(IntEnum):
    """IPsec DOI Situation bits (RFC 2407 §4.2): a bitmap, these are the single bits."""

    SIT_IDENTITY_ONLY = 0x01
    SIT_SECRECY = 0x02
    SIT_INTEGRITY = 0x04


class V1IpcompTransformId(IntEnum):
    """IPsec DOI IPCOMP Transform Identifiers (RFC 2407 §4.4.5)."""

    IPCOMP_OUI = 1
    IPCOMP_DEFLATE = 2
    IPCOMP_LZS = 3
    IPCOMP_LZJH = 4


class V1IpsecAttr(IntEnum):
    """IPsec DOI SA attributes (RFC 2407 §4.5), used in Quick Mode transforms."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTHENTICATION_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICTIONARY_SIZE = 8
    COMPRESS_PRIVATE_ALGORITHM = 9
    ECN_TUNNEL = 10
    EXTENDED_SEQUENCE_NUMBER = 11


class V1EncapMode(IntEnum):
    """IPsec DOI Encapsulation Mode (RFC 2407, RFC 3947 and the NAT-T drafts)."""

    TUNNEL = 1
    TRANSPORT = 2
    UDP_TUNNEL = 3  # RFC 3947
    UDP_TRANSPORT = 4  # RFC 3947
    UDP_TUNNEL_DRAFT = 61443  # draft-ietf-ipsec-nat-t-ike
    UDP_TRANSPORT_DRAFT = 61444


class V1IpsecAuthAlg(IntEnum):
    """IPsec DOI Authentication Algorithm attribute (RFC 2407 §4.5, later additions)."""

    HMAC_MD5 = 1
    HMAC_SHA = 2
    DES_MAC = 3
    KPDK = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    HMAC_RIPEMD = 8
    AES_XCBC_MAC = 9
    SIG_RSA = 10
    AES_128_GMAC = 11
    AES_192_GMAC = 12
    AES_256_GMAC = 13


class V1IsakmpTransformId(IntEnum):
    """ISAKMP Transform identifiers for PROTO_ISAKMP."""

    KEY_IKE = 1


class V1EspTransformId(IntEnum):
    """IPsec DOI ESP Transform Identifiers (RFC 2407 §4.4.4 and later)."""

    ESP_DES_IV64 = 1
    ESP_DES = 2
    ESP_3DES = 3
    ESP_RC5 = 4
    ESP_IDEA = 5
    ESP_CAST = 6
    ESP_BLOWFISH = 7
    ESP_3IDEA = 8
    ESP_DES_IV32 = 9
    ESP_RC4 = 10
    ESP_NULL = 11
    ESP_AES_CBC = 12
    ESP_AES_CTR = 13
    ESP_AES_CCM_8 = 14
    ESP_AES_CCM_12 = 15
    ESP_AES_CCM_16 = 16
    ESP_AES_GCM_8 = 18
    ESP_AES_GCM_12 = 19
    ESP_AES_GCM_16 = 20
    ESP_SEED_CBC = 21
    ESP_CAMELLIA = 22
    ESP_NULL_AUTH_AES_GMAC = 23


class V1AhTransformId(IntEnum):
    """IPsec DOI AH Transform Identifiers."""

    AH_MD5 = 2
    AH_SHA = 3
    AH_DES = 4
    AH_SHA2_256 = 5
    AH_SHA2_384 = 6
    AH_SHA2_512 = 7
    AH_RIPEMD = 8
    AH_AES_XCBC_MAC = 9
    AH_RSA = 10
    AH_AES_128_GMAC = 11
    AH_AES_192_GMAC = 12
    AH_AES_256_GMAC = 13


class V1IdType(IntEnum):
    """IPsec DOI Identification Type Values (RFC 2407 §4.6.2.1)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_USER_FQDN = 3
    ID_IPV4_ADDR_SUBNET = 4
    ID_IPV6_ADDR = 5
    ID_IPV6_ADDR_SUBNET = 6
    ID_IPV4_ADDR_RANGE = 7
    ID_IPV6_ADDR_RANGE = 8
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11
    ID_LIST = 12


class V1CertEncoding(IntEnum):
    """ISAKMP Certificate Encoding (RFC 2408 §3.9)."""

    NONE = 0
    PKCS7_WRAPPED_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_CERT_SIGNATURE = 4
    X509_CERT_KEY_EXCHANGE = 5
    KERBEROS_TOKENS = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_CERT_ATTRIBUTE = 10


class V1CfgType(IntEnum):
    """ISAKMP Mode-Config message types (draft-dukes-ike-mode-cfg)."""

    ISAKMP_CFG_REQUEST = 1
    ISAKMP_CFG_REPLY = 2
    ISAKMP_CFG_SET = 3
    ISAKMP_CFG_ACK = 4


class V1CfgAttr(IntEnum):
    """Mode-Config and XAUTH attribute types."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_ADDRESS_EXPIRY = 5
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_NETMASK = 9
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_NBNS = 11
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    XAUTH_TYPE = 16520
    XAUTH_USER_NAME = 16521
    XAUTH_USER_PASSWORD = 16522
    XAUTH_PASSCODE = 16523
    XAUTH_MESSAGE = 16524
    XAUTH_CHALLENGE = 16525
    XAUTH_DOMAIN = 16526
    XAUTH_STATUS = 16527
    XAUTH_NEXT_PIN = 16528
    XAUTH_ANSWER = 16529
    UNITY_BANNER = 28672
    UNITY_SAVE_PASSWD = 28673
    UNITY_DEF_DOMAIN = 28674
    UNITY_SPLITDNS_NAME = 28675
    UNITY_SPLIT_INCLUDE = 28676
    UNITY_NATT_PORT = 28677
    UNITY_LOCAL_LAN = 28678
    UNITY_PFS = 28679
    UNITY_FW_TYPE = 28680
    UNITY_BACKUP_SERVERS = 28681
    UNITY_DDNS_HOSTNAME = 28682


# IKEv1 group descriptions share the numbering of IKEv2 KE groups (RFC 2409 + RFC 3526 etc.).
V1Group = KeGroup


# ------------------------------------------------------------------------------------------
# IP-level numbers used by the demux
# ------------------------------------------------------------------------------------------


class IpProto(IntEnum):
    HOPOPTS = 0
    ICMP = 1
    IPIP = 4
    TCP = 6
    UDP = 17
    IPV6 = 41
    ROUTING = 43
    FRAGMENT = 44
    GRE = 47
    ESP = 50
    AH = 51
    ICMPV6 = 58
    NONE = 59
    DSTOPTS = 60
    MOBILITY = 135
    HIP = 139
    SHIM6 = 140


class EapCode(IntEnum):
    """EAP packet codes (RFC 3748 §4), carried whole in the IKEv2 EAP payload."""

    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


class EapType(IntEnum):
    """EAP method types (IANA "Extensible Authentication Protocol (EAP) Registry"), common subset."""

    IDENTITY = 1
    NOTIFICATION = 2
    NAK = 3
    MD5_CHALLENGE = 4
    OTP = 5
    GTC = 6
    TLS = 13
    SIM = 18
    TTLS = 21
    AKA = 23
    PEAP = 25
    MSCHAPV2 = 26
    FAST = 43
    PSK = 47
    AKA_PRIME = 50
    EXPANDED = 254


IKE_PORT = 500
NATT_PORT = 4500


# Prefix used by name_of() for values without an IANA name.
_PLACEHOLDERS: dict[str, str] = {
    "ExchangeType": "EXCHANGE",
    "PayloadType": "PAYLOAD",
    "ProtocolId": "PROTO",
    "TransformType": "TRANSFORM_TYPE",
    "EncrId": "ENCR",
    "PrfId": "PRF",
    "IntegId": "AUTH",
    "KeGroup": "KE",
    "EsnId": "ESN",
    "TransformAttr": "ATTR",
    "IdType": "ID",
    "CertEncoding": "CERT",
    "AuthMethod": "AUTH_METHOD",
    "TsType": "TS",
    "CfgType": "CFG",
    "CfgAttr": "CFG_ATTR",
    "NotifyType": "NOTIFY",
    "HashAlgorithm": "HASH",
    "GatewayIdType": "GW_ID",
    "V1Exchange": "V1_EXCHANGE",
    "V1PayloadType": "V1_PAYLOAD",
    "V1ProtocolId": "V1_PROTO",
    "V1NotifyType": "V1_NOTIFY",
    "V1AttrClass": "V1_ATTR",
    "V1EncrAlg": "V1_ENCR",
    "V1HashAlg": "V1_HASH",
    "V1AuthMethod": "V1_AUTH",
    "V1LifeType": "V1_LIFE",
    "V1GroupType": "V1_GROUP_TYPE",
    "V1Doi": "DOI",
    "V1Situation": "SIT",
    "V1IpcompTransformId": "IPCOMP",
    "V1IpsecAttr": "V1_IPSEC_ATTR",
    "V1EncapMode": "V1_ENCAP",
    "V1IpsecAuthAlg": "V1_IPSEC_AUTH",
    "V1IsakmpTransformId": "V1_KEY",
    "V1EspTransformId": "ESP",
    "V1AhTransformId": "AH",
    "V1IdType": "V1_ID",
    "V1CertEncoding": "V1_CERT",
    "V1CfgType": "V1_CFG",
    "V1CfgAttr": "V1_CFG_ATTR",
    "IpProto": "IPPROTO",
    "EapCode": "EAP_CODE",
    "EapType": "EAP_TYPE",
}
