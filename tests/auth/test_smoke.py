from tests.conftest import login, register


async def test_register_then_login_lands_on_home(client):
    await register(client)
    response = await login(client)
    assert response.status_code == 302
    page = await (await client.get("/")).get_data(as_text=True)
    assert "Hello, alice!" in page
