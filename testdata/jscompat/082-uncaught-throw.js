Log("before");
throw new Error("fatal");
