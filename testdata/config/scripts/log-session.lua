Log("hello")
