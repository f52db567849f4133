function makeAccount(balance) {
  return {
    deposit: function (n) { balance += n; return balance; },
    get: function () { return balance; },
  };
}
var acc = makeAccount(10);
acc.deposit(5);
acc.deposit(-3);
Log(acc.get());
