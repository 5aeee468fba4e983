// baocao – the “Kiểm tra báo cáo” add-in's script (loaded by taskpane.html, the task pane and the ribbon's page).
//
// xlwings' own Office.js client (served by the baocao server from the installed xlwings-server package)
// sends the open workbook to the server with runPython and applies the actions the server answers with:
// colours, the “Kết quả kiểm tra” sheet, the alert. Nothing here speaks to the server itself.
import {
  registerCallback,
  runPython,
} from "../static/custom-scripts/index.js";

const SCRIPT_NAME = "kiem_tra_bao_cao"; // POST /xlwings/custom-scripts-call/kiem_tra_bao_cao

// Template sheets are protected, and a protected sheet's fill colour cannot be changed. The server wraps
// its colouring of a sheet in two runMacro actions (book.app.macro(...) in Python) that land here.
const unprotected = new Set();

async function baocaoUnprotect(context, sheetName, password) {
  const sheet = context.workbook.worksheets.getItem(sheetName);
  sheet.protection.load("protected");
  await context.sync();
  if (sheet.protection.protected) {
    sheet.protection.unprotect(password || undefined);
    await context.sync();
    unprotected.add(sheetName);
  }
}

async function baocaoProtect(context, sheetName, password) {
  if (!unprotected.delete(sheetName)) {
    return;
  }
  const sheet = context.workbook.worksheets.getItem(sheetName);
  // As the template protects it: cells can be selected, only the unlocked (yellow) ones edited.
  sheet.protection.protect({ selectionMode: "Normal" }, password || undefined);
  await context.sync();
}

registerCallback(baocaoUnprotect);
registerCallback(baocaoProtect);

export async function kiemTraBaoCao(event) {
  try {
    await runPython({ scriptName: SCRIPT_NAME });
  } finally {
    if (event && typeof event.completed === "function") {
      event.completed(); // a ribbon command must say when it is done
    }
  }
}

globalThis.kiemTraBaoCao = kiemTraBaoCao;

Office.onReady(() => {
  // The ribbon button (manifest.xml: <FunctionName>kiemTraBaoCao</FunctionName>).
  if (Office.actions && typeof Office.actions.associate === "function") {
    Office.actions.associate("kiemTraBaoCao", kiemTraBaoCao);
  }
  // The task pane's button.
  const button = document.getElementById("kiem-tra");
  if (button) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await kiemTraBaoCao();
      } finally {
        button.disabled = false;
      }
    });
  }
  const server = document.getElementById("may-chu");
  if (server) {
    server.textContent = window.location.origin;
  }
});
