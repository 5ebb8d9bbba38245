"""The WeChat edge: the callback protocol (signatures, AES, XML in and out), the outbound API client
and the one access token all processes share."""
