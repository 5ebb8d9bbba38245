"""WeChat's side, for trying and testing the bot without a WeChat account: the fake WeChat API
(``fake_wechat``), what WeChat does to a callback (``wechat_side``), the terminal chat client
(``chat``) and the demo (``demo``). Installed beside the product; the product never imports it."""
