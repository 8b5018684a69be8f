import re

from tokenmill.tenancy.keys import hash_secret, new_id, new_secret, prefix_of


def test_secrets_are_random_urlsafe_and_carry_256_bits():
    a, b = new_secret(), new_secret()
    assert a != b
    assert re.fullmatch(r"tm-[A-Za-z0-9_-]{43}", a)  # 32 bytes in base64url


def test_hash_is_sha256_hex_and_stable():
    s = new_secret()
    assert hash_secret(s) == hash_secret(s)
    assert re.fullmatch(r"[0-9a-f]{64}", hash_secret(s))
    assert hash_secret(s) != hash_secret(s + "x")


def test_ids_and_prefix():
    assert re.fullmatch(r"ten_[0-9a-f]{16}", new_id("ten"))
    assert re.fullmatch(r"key_[0-9a-f]{16}", new_id("key"))
    s = new_secret()
    assert prefix_of(s) == s[:10] and prefix_of(s).startswith("tm-")
