import httpx
def test_smoke(fake_wechat):
    r = httpx.get(fake_wechat.base_url + "/cgi-bin/token", params={"grant_type":"client_credential","appid":"wx0123456789abcdef","secret":"test-secret-0123456789abcdef0123"})
    assert r.json()["expires_in"] == 7200
