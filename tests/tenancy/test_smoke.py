from tests.conftest import Brand


def test_each_brand_host_serves_its_own_profile(alpha: Brand, beta: Brand) -> None:
    assert alpha.client().get("/api/v1/site/").json()["display_name"] == "阿尔法酒业"
    assert beta.client().get("/api/v1/site/").json()["display_name"] == "贝塔酒业"
